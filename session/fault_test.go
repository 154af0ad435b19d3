package session_test

// Fault cases that work today, kept working (issue #14): a backend killed
// mid-transfer, clients that reset mid-stream, half-closes whose reader
// is late or slow, and malformed PROXY headers counted by reason.
// Slowloris against timeout_client is TestSlowlorisCutWhileOthersServed.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/proxyproto"
	"ringproxy/session/testbed"
)

// childEchoEnv makes the test binary an echo server in a process of its
// own (see TestMain), which a test can kill -9 mid-transfer.
const childEchoEnv = "RINGPROXY_TEST_CHILD_ECHO"

// runChildEcho listens on 127.0.0.1:0, prints its address and echoes
// every connection until killed. It is testbed's echo for a process with
// no testing.T: on the client's FIN it half-closes after writing back
// everything it read.
func runChildEcho() int {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println("listen:", err)
		return 2
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			fmt.Fprintln(os.Stderr, "child echo: accept:", err)
			return 2
		}
		go func() {
			defer c.Close()
			testbed.EchoConn(c)
		}()
	}
}

// startChildEcho runs runChildEcho in a child process. It returns the
// child, its address, and how many fds the child costs this process (the
// stdout pipe and the pidfd), which go away with cmd.Wait.
func startChildEcho(t *testing.T) (*exec.Cmd, netip.AddrPort, int) {
	t.Helper()
	fds := openFds(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEchoEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	fds = openFds(t) - fds
	var line string
	if _, err := fmt.Fscanln(out, &line); err != nil {
		t.Fatalf("child echo: %v", err)
	}
	addr, err := netip.ParseAddrPort(line)
	if err != nil {
		t.Fatalf("child echo said %q", line)
	}
	return cmd, addr, fds
}

// A backend process killed with SIGKILL while 8 clients stream through
// it: every client's stream ends early (an error, fewer bytes than
// sent, and never a byte it did not send), the proxy keeps no session
// and no fd, and it goes on serving through the same frontend.
//
// Today the server's reset reaches the client as a plain close (issue
// #14 item 6), so no ECONNRESET is asserted here.
func TestFaultBackendKilledMidTransfer(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		live := testbed.StartEcho(t)
		child, childAddr, childFds := startChildEcho(t)
		// balance "first": every session goes to the child while it lives;
		// once it is dead, the last retry redispatches to the live echo.
		cfg := testConfig(eng, childAddr, live.Addr())
		cfg.Backends[0].Balance = "first"
		p, addr := startProxy(t, cfg)
		before := openFds(t)

		const clients = 8
		const size = 1 << 30 // far more than can move before the kill
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		results := make([]testbed.IntegrityResult, clients)
		errs := make([]error, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() { results[i], errs[i] = testbed.IntegrityRun(ctx, addr, size, int64(100+i)) })
		}
		// Kill once every session has echoed 1 MiB through the child.
		testbed.WaitFor(t, 20*time.Second, func() bool {
			ss := p.Sessions()
			if len(ss) != clients {
				return false
			}
			for _, s := range ss {
				if s.Server != "s1" || s.BytesOut < 1<<20 {
					return false
				}
			}
			return true
		}, "every client to stream through the child backend")
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		child.Wait()
		wg.Wait()
		if ctx.Err() != nil {
			t.Fatalf("clients still streaming %v after the backend was killed", 30*time.Second)
		}
		lo, hi := int64(size), int64(0)
		for i, res := range results {
			lo, hi = min(lo, res.Received), max(hi, res.Received)
			switch {
			case errs[i] == nil:
				t.Errorf("client %d: a complete stream through a killed backend", i)
			case res.Received >= size || res.Received > res.Sent:
				t.Errorf("client %d: received %d bytes, sent %d of %d", i, res.Received, res.Sent, size)
			case res.FirstDiff >= 0:
				t.Errorf("client %d: received bytes differ from those sent at offset %d", i, res.FirstDiff)
			}
		}
		t.Logf("client 0 ended with: %v", errs[0])
		testbed.WaitFor(t, 5*time.Second, func() bool { return p.Stats().CurConns == 0 }, "every session to end")
		testbed.WaitFor(t, 5*time.Second, func() bool { return openFds(t) <= before-childFds }, "fds back to their level")
		st := p.Stats()
		t.Logf("after the kill: ended %v, received %d..%d MiB; fds %d before (%d for the child), %d after",
			st.Ended, lo>>20, hi>>20, before, childFds, openFds(t))
		if ended := st.Ended[session.ReasonServerError] + st.Ended[session.ReasonClientError]; ended != clients || st.Ended[session.ReasonDone] != 0 {
			t.Errorf("sessions ended: %d on an error, %d as done; want %d and 0", ended, st.Ended[session.ReasonDone], clients)
		}
		// Same frontend, same backend: the dead server is retried, then the
		// live one serves.
		if _, err := testbed.IntegrityRun(context.Background(), addr, 4<<20, 7); err != nil {
			t.Fatalf("a fresh session after the backend was killed: %v", err)
		}
		if st := p.Stats(); st.Redispatches != 1 || st.Ended[session.ReasonConnectFailed] != 0 {
			t.Errorf("fresh session: %d redispatches (want 1), %d connect failures (want 0)", st.Redispatches, st.Ended[session.ReasonConnectFailed])
		}
	})
}

// 50 clients each send 1 MiB of a stream, see part of its echo, then
// reset (SO_LINGER 0) while 8 well-behaved clients move 4 MiB each: the
// well-behaved get every byte, every backend connection ends, and the
// proxy keeps no session and no fd.
func TestFaultClientsResetMidStream(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		p, addr := startProxy(t, testConfig(eng, echo.Addr()))
		before := openFds(t)
		const resetters, good = 50, 8
		var wg sync.WaitGroup
		wg.Go(func() { wellBehaved(t, addr, good, 4<<20) })
		for i := range resetters {
			wg.Go(func() {
				if err := resetMidStream(addr, 1<<20, 256<<10); err != nil {
					t.Errorf("resetting client %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		testbed.WaitFor(t, 10*time.Second, func() bool { return p.Stats().CurConns == 0 }, "every session to end")
		testbed.WaitFor(t, 10*time.Second, func() bool { return echo.Active() == 0 }, "every backend connection to end")
		if n := echo.Accepted(); n != resetters+good {
			t.Errorf("the backend accepted %d connections, want %d", n, resetters+good)
		}
		testbed.WaitFor(t, 5*time.Second, func() bool { return openFds(t) <= before }, "fds back to their level")
		st := p.Stats()
		if st.Ended[session.ReasonClientError] != resetters || st.Ended[session.ReasonDone] != good || st.Late != 0 {
			t.Errorf("ended %v (want %d client-error, %d done), %d late completions", st.Ended, resetters, good, st.Late)
		}
	})
}

// resetMidStream sends send bytes through an echo while reading it back,
// and once at least echoed bytes have come back, closes with SO_LINGER 0:
// a reset, with data in flight both ways.
func resetMidStream(addr netip.AddrPort, send, echoed int) error {
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		return err
	}
	tc := c.(*net.TCPConn)
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	enough := make(chan error, 1)
	var reader sync.WaitGroup
	reader.Go(func() {
		buf := make([]byte, 32<<10)
		got := 0
		for {
			n, err := tc.Read(buf)
			got += n
			if got >= echoed && n > 0 && got-n < echoed {
				enough <- nil
			}
			if err != nil {
				if got < echoed {
					enough <- fmt.Errorf("read %d bytes of the echo: %w", got, err)
				}
				return
			}
		}
	})
	chunk := make([]byte, 64<<10)
	rand.Read(chunk)
	for sent := 0; sent < send; sent += len(chunk) {
		if _, err := tc.Write(chunk); err != nil {
			return fmt.Errorf("write after %d bytes: %w", sent, err)
		}
	}
	err = <-enough
	tc.SetLinger(0)
	tc.Close()
	reader.Wait()
	return err
}

// halfCloseSize is larger than what the socket buffers on the way (up to
// 32 MiB receive, 4 MiB send on this kind of host) and the proxy hold,
// so a reader that does not read holds the writer back.
const halfCloseSize = 64 << 20

// A client sends its request, half-closes, and starts reading only
// 400 ms later; the server answers with 64 MiB once it has the client's
// FIN. Every byte reaches the client and the session ends cleanly.
func TestFaultHalfCloseClientReadsLate(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		answer := make([]byte, halfCloseSize)
		rand.Read(answer)
		var written atomic.Int64
		requests := make(chan string, 1)
		srv := testbed.StartFunc(t, func(c *net.TCPConn) {
			h := sha256.New()
			if _, err := io.Copy(h, c); err != nil { // to the client's FIN
				requests <- "read: " + err.Error()
				return
			}
			requests <- hex.EncodeToString(h.Sum(nil))
			for off := 0; off < len(answer); off += 1 << 20 {
				if _, err := c.Write(answer[off : off+1<<20]); err != nil {
					return
				}
				written.Add(1 << 20)
			}
			c.CloseWrite()
			io.Copy(io.Discard, c)
		})
		p, addr := startProxy(t, testConfig(eng, srv.Addr()))
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		request := make([]byte, 1<<20)
		rand.Read(request)
		if _, err := c.Write(request); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		select {
		case got := <-requests:
			if got != testbed.SHA256Hex(request) {
				t.Fatalf("server got the request as %s", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the server never saw the client's FIN")
		}
		time.Sleep(400 * time.Millisecond) // the late reader
		held := written.Load()
		t.Logf("the server had written %d of %d MiB when the client began to read", held>>20, halfCloseSize>>20)
		if held >= halfCloseSize {
			t.Errorf("the whole answer fit in the buffers: the late reader held nothing back")
		}
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil || n != halfCloseSize || hex.EncodeToString(h.Sum(nil)) != testbed.SHA256Hex(answer) {
			t.Fatalf("late reader got %d of %d bytes (%v), sha256 match %v", n, halfCloseSize, err, hex.EncodeToString(h.Sum(nil)) == testbed.SHA256Hex(answer))
		}
		testbed.WaitFor(t, 5*time.Second, func() bool {
			st := p.Stats()
			return st.CurConns == 0 && st.Ended[session.ReasonDone] == 1
		}, "the session to end as done")
	})
}

// The mirror: the server sends 64 MiB and half-closes first, while the
// client starts reading 400 ms late and then reads slowly; the client
// gets every byte and the server's FIN after it, then sends its own
// request, which the server gets whole.
func TestFaultHalfCloseServerFirstSlowReader(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		payload := make([]byte, halfCloseSize)
		rand.Read(payload)
		srv := testbed.StartServerClosesFirst(t, payload)
		p, addr := startProxy(t, testConfig(eng, srv.Addr()))
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		time.Sleep(400 * time.Millisecond)
		h := sha256.New()
		buf := make([]byte, 256<<10)
		var n int64
		for {
			k, err := c.Read(buf)
			h.Write(buf[:k])
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("slow reader: read after %d bytes: %v", n, err)
			}
			time.Sleep(time.Millisecond)
		}
		if n != halfCloseSize || hex.EncodeToString(h.Sum(nil)) != testbed.SHA256Hex(payload) {
			t.Fatalf("slow reader got %d of %d bytes before the FIN, sha256 match %v", n, halfCloseSize, hex.EncodeToString(h.Sum(nil)) == testbed.SHA256Hex(payload))
		}
		request := make([]byte, 1<<20)
		rand.Read(request)
		if _, err := c.Write(request); err != nil {
			t.Fatalf("write after the server's FIN: %v", err)
		}
		c.(*net.TCPConn).CloseWrite()
		res, err := srv.Results(1, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil || res[0].Bytes != int64(len(request)) || res[0].SHA256 != testbed.SHA256Hex(request) {
			t.Fatalf("server got %d of %d bytes (%v) after its FIN", res[0].Bytes, len(request), res[0].Err)
		}
		testbed.WaitFor(t, 5*time.Second, func() bool {
			st := p.Stats()
			return st.CurConns == 0 && st.Ended[session.ReasonDone] == 1
		}, "the session to end as done")
	})
}

// badHeader is a malformed PROXY header and the reason the parser gives.
type badHeader struct {
	in     []byte
	reason string
}

// badHeaders covers every reason the parser reports, a few ways each.
func badHeaders() []badHeader {
	const v2sig = "\r\n\r\n\x00\r\nQUIT\n"
	v2 := func(verCmd, fam byte, length int, block int) []byte {
		b := append([]byte(v2sig), verCmd, fam)
		b = binary.BigEndian.AppendUint16(b, uint16(length))
		return append(b, make([]byte, block)...)
	}
	return []badHeader{
		{[]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), proxyproto.ReasonNotProxy},
		{[]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"), proxyproto.ReasonNotProxy}, // a TLS ClientHello
		{[]byte("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), proxyproto.ReasonNotProxy},
		{[]byte("\r\n\r\n\x00\r\nQUIT!"), proxyproto.ReasonNotProxy},
		{[]byte("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), proxyproto.ReasonBadV1},
		{[]byte("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), proxyproto.ReasonBadV1},
		{[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n"), proxyproto.ReasonBadV1},
		{[]byte("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), proxyproto.ReasonBadV1},
		{[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), proxyproto.ReasonBadV1},
		{v2(0x11, 0x11, 12, 12), proxyproto.ReasonBadV2}, // version 1
		{v2(0x23, 0x11, 12, 12), proxyproto.ReasonBadV2}, // command 3
		{v2(0x21, 0x77, 12, 12), proxyproto.ReasonBadV2}, // undefined family
		{v2(0x21, 0x11, 4, 4), proxyproto.ReasonBadV2},   // too short for TCP4 addresses
		{append([]byte("PROXY UNKNOWN "), strings.Repeat("x", 120)...), proxyproto.ReasonTooLong},
		{v2(0x21, 0x11, 0xffff, 0), proxyproto.ReasonTooLong},
		{v2(0x21, 0x12, 12, 12), proxyproto.ReasonUnsupportedFamily},   // UDP4
		{v2(0x21, 0x22, 36, 36), proxyproto.ReasonUnsupportedFamily},   // UDP6
		{v2(0x21, 0x31, 216, 216), proxyproto.ReasonUnsupportedFamily}, // UNIX stream
	}
}

// 200 connections with malformed PROXY headers, 40 for each reason the
// parser knows: each reason's counter grows by exactly its 40, nothing is
// put down to a timeout or an early close, every client is closed without
// a byte, no fd is left, and a well-formed header is served after.
func TestFaultMalformedProxyHeadersCounted(t *testing.T) {
	headers := badHeaders()
	for _, h := range headers {
		var pe *proxyproto.Error
		if _, _, err := proxyproto.Parse(h.in); !errors.As(err, &pe) || pe.Reason != h.reason {
			t.Fatalf("test case %q: the parser says %v, the case %s", h.in, err, h.reason)
		}
	}
	forEngines(t, func(t *testing.T, eng string) {
		cfg := testConfig(eng, headerReporter(t))
		cfg.Frontends[0].AcceptProxy = true
		cfg.Backends[0].SendProxy = "v2"
		p, addr := startProxy(t, cfg)
		before := openFds(t)
		st0 := p.Stats()

		reasons := proxyproto.Reasons()
		const total = 200
		perReason := total / len(reasons)
		var plan []badHeader
		for _, r := range reasons {
			var of []badHeader
			for _, h := range headers {
				if h.reason == r {
					of = append(of, h)
				}
			}
			for i := range perReason {
				plan = append(plan, of[i%len(of)])
			}
		}
		var wg sync.WaitGroup
		for i, h := range plan {
			wg.Go(func() {
				if err := sendExpectClose(addr, h.in, 10*time.Second); err != nil {
					t.Errorf("client %d (%s, %q): %v", i, h.reason, h.in, err)
				}
			})
		}
		wg.Wait()
		testbed.WaitFor(t, 5*time.Second, func() bool {
			st := p.Stats()
			return st.CurConns == 0 && st.Ended[session.ReasonBadProxy]-st0.Ended[session.ReasonBadProxy] == total
		}, "every malformed header's session to end as bad-proxy")
		st := p.Stats()
		for _, r := range append(reasons, "timeout", "closed") {
			want := uint64(0)
			for _, h := range plan {
				if h.reason == r {
					want++
				}
			}
			if got := proxyErrors(st, r) - proxyErrors(st0, r); got != want {
				t.Errorf("PROXY errors %q grew by %d, want %d", r, got, want)
			}
		}
		if st.Accepted-st0.Accepted != total || st.ConnAttempts != st0.ConnAttempts {
			t.Errorf("%d sessions accepted (want %d), %d connects to the server (want 0)", st.Accepted-st0.Accepted, total, st.ConnAttempts-st0.ConnAttempts)
		}
		testbed.WaitFor(t, 5*time.Second, func() bool { return openFds(t) <= before }, "fds back to their level")
		src := netip.MustParseAddrPort("203.0.113.7:5555")
		hdr := proxyproto.AppendV1(nil, src, netip.MustParseAddrPort("198.51.100.1:80"))
		if got, want := roundTrip(t, addr, hdr, "after the storm"), src.String()+"\nafter the storm"; got != want {
			t.Fatalf("a well-formed header after 200 bad ones: got %q, want %q", got, want)
		}
	})
}

// sendExpectClose dials addr, writes b and expects the peer to close
// (EOF or a reset) without sending a byte.
func sendExpectClose(addr netip.AddrPort, b []byte, within time.Duration) error {
	c, err := net.DialTimeout("tcp", addr.String(), within)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(within))
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	n, err := io.Copy(io.Discard, c)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("still open after %v", within)
	case err != nil && !errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("read: %w", err)
	case n != 0:
		return fmt.Errorf("got %d bytes before the close", n)
	}
	return nil
}
