package testbed

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

const mib = 1 << 20

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEchoIntegrity(t *testing.T) {
	e := StartEcho(t)
	total, elapsed := IntegrityMany(t, e.Addr(), 8, 2*mib)
	if total != 8*2*mib {
		t.Errorf("total = %d bytes, want %d", total, 8*2*mib)
	}
	t.Logf("8 x 2 MiB echoed in %v (%.0f MB/s each way)", elapsed, float64(total)/1e6/elapsed.Seconds())
	if got := e.Accepted(); got != 8 {
		t.Errorf("Accepted = %d, want 8", got)
	}
	WaitFor(t, 2*time.Second, func() bool { return e.Active() == 0 }, "echo connections to finish")
}

func TestIntegrityRunResultOnSuccess(t *testing.T) {
	e := StartEcho(t)
	res, err := IntegrityRun(testCtx(t), e.Addr(), 100_000, 42)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 100_000 || res.Received != 100_000 || res.FirstDiff != -1 || res.SentSHA256 != res.ReceivedSHA256 {
		t.Fatalf("unexpected result %+v", res)
	}
}

// The sink answers with a short summary instead of an echo, so IntegrityRun
// must fail; the summary also proves the sink got the whole request.
func TestIntegrityRunFailsAgainstSink(t *testing.T) {
	k := StartSink(t)
	const size = mib
	res, err := IntegrityRun(testCtx(t), k.Addr(), size, 3)
	if err == nil {
		t.Fatal("IntegrityRun against the sink succeeded; it must report a mismatch")
	}
	t.Logf("expected error: %v", err)
	if !strings.Contains(err.Error(), "sent 1048576 of 1048576 bytes, received ") {
		t.Errorf("error does not say how many bytes were sent and received: %v", err)
	}
	if res.FirstDiff != 0 || res.Received == 0 || res.Received > 100 {
		t.Errorf("result %+v: want a short summary that differs at offset 0", res)
	}
	rs, err := k.Results(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Err != nil || rs[0].Bytes != size || rs[0].SHA256 != res.SentSHA256 {
		t.Errorf("sink result %+v, want %d bytes with sha256 %s", rs[0], size, res.SentSHA256)
	}
}

// corruptingEcho echoes but flips the byte at offset at.
func corruptingEcho(at int64) func(*net.TCPConn) {
	return func(c *net.TCPConn) {
		buf := make([]byte, 4096)
		var off int64
		for {
			n, err := c.Read(buf)
			if at >= off && at < off+int64(n) {
				buf[at-off] ^= 0xff
			}
			off += int64(n)
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
			if err != nil {
				c.CloseWrite()
				return
			}
		}
	}
}

func TestIntegrityRunLocatesCorruption(t *testing.T) {
	s := StartFunc(t, corruptingEcho(123_457))
	res, err := IntegrityRun(testCtx(t), s.Addr(), 500_000, 9)
	if err == nil {
		t.Fatal("corrupted echo passed the integrity check")
	}
	if res.FirstDiff != 123_457 || res.Received != 500_000 {
		t.Fatalf("result %+v: want FirstDiff 123457 and all 500000 bytes received", res)
	}
}

// A backend that echoes only a prefix but keeps reading gives a short,
// otherwise correct stream.
func TestIntegrityRunDetectsTruncation(t *testing.T) {
	s := StartFunc(t, func(c *net.TCPConn) {
		io.CopyN(c, c, 1000)
		c.CloseWrite()
		io.Copy(io.Discard, c)
	})
	res, err := IntegrityRun(testCtx(t), s.Addr(), 200_000, 5)
	if err == nil {
		t.Fatal("truncated echo passed the integrity check")
	}
	if res.Received != 1000 || res.FirstDiff != -1 || res.Sent != 200_000 {
		t.Fatalf("result %+v: want 1000 matching bytes received of 200000 sent", res)
	}
}

// A peer that stops reading after it finished sending must not hang
// IntegrityRun until the context expires.
func TestIntegrityRunDoesNotHangOnStalledPeer(t *testing.T) {
	stop := make(chan struct{})
	s := StartFunc(t, func(c *net.TCPConn) {
		c.SetReadBuffer(4096) // so the client's writes block soon
		io.CopyN(c, c, 10)
		c.CloseWrite()
		<-stop
	})
	t.Cleanup(func() { close(stop) }) // runs before the server's Close
	start := time.Now()
	_, err := IntegrityRun(testCtx(t), s.Addr(), 16*mib, 1)
	if err == nil || !strings.Contains(err.Error(), "did not read the rest") {
		t.Fatalf("err = %v, want a stalled-peer error", err)
	}
	if took := time.Since(start); took > writerGrace+2*time.Second {
		t.Fatalf("took %v, want about %v", took, writerGrace)
	}
}

func TestNamed(t *testing.T) {
	n := StartNamed(t, "alpha")
	line, err := ReadLine(n.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if line != "alpha" {
		t.Fatalf("ReadLine = %q, want %q", line, "alpha")
	}
	WaitFor(t, 2*time.Second, func() bool { return n.Active() == 0 }, "named backend to see the close")
}

func TestNamedHTTP(t *testing.T) {
	n := StartNamedHTTP(t, "beta")
	c, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET /who HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != "beta\n" || !resp.Close {
		t.Fatalf("got %s, Close=%v, body %q; want 200, Connection: close, body %q", resp.Status, resp.Close, body, "beta\n")
	}
}

func TestSilentNeverCloses(t *testing.T) {
	s := StartSilent(t)
	start := time.Now()
	_, err := DialExpectClose(s.Addr(), 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "still open after 200ms") {
		t.Fatalf("DialExpectClose on a silent backend: err = %v, want a still-open error", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("DialExpectClose took %v, want about 200ms", took)
	}
	// The client closed its side when DialExpectClose returned. The
	// handler counts the close before the server counts it inactive.
	WaitFor(t, 2*time.Second, func() bool { return s.Closed() == 1 && s.Active() == 0 }, "silent backend to count the peer close")
	if s.Accepted() != 1 {
		t.Fatalf("Active = %d, Accepted = %d; want 0 and 1", s.Active(), s.Accepted())
	}
}

// Closing the backend is seen by the client, but is not a peer close.
func TestDialExpectCloseSeesBackendClose(t *testing.T) {
	s := StartSilent(t)
	timer := time.AfterFunc(100*time.Millisecond, s.Close)
	defer timer.Stop()
	took, err := DialExpectClose(s.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took < 50*time.Millisecond || took > time.Second {
		t.Errorf("close seen after %v, want about 100ms", took)
	}
	if s.Closed() != 0 {
		t.Errorf("Closed = %d, want 0: the backend closed, not the peer", s.Closed())
	}
}

func TestDeadAddrRefuses(t *testing.T) {
	addr := DeadAddr(t)
	_, err := net.DialTimeout("tcp", addr.String(), time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: err = %v, want connection refused", addr, err)
	}
	_, err = ReadLine(addr, time.Second)
	if err == nil || !strings.Contains(err.Error(), addr.String()) {
		t.Fatalf("ReadLine error %v does not name the address", err)
	}
}

func TestServerClosesFirst(t *testing.T) {
	payload := make([]byte, 300_000)
	rand.Read(payload)
	s := StartServerClosesFirst(t, payload)
	tr, err := ReceiveThenSend(testCtx(t), s.Addr(), mib, 11)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Received != int64(len(payload)) || tr.ReceivedSHA256 != SHA256Hex(payload) {
		t.Fatalf("client got %d bytes sha256 %s, want the %d-byte payload", tr.Received, tr.ReceivedSHA256, len(payload))
	}
	rs, err := s.Results(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs[0]; r.Err != nil || r.Bytes != mib || r.SHA256 != tr.SentSHA256 {
		t.Fatalf("server recorded %+v, want %d bytes with sha256 %s", r, mib, tr.SentSHA256)
	}
}

func TestHoldMaxActive(t *testing.T) {
	h := StartHold(t)
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", h.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	WaitFor(t, 2*time.Second, func() bool { return h.Active() == 3 }, "3 active connections")
	// Every echo before any close: an echo proves its handler runs and
	// counts itself live, and no connection has left yet.
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(c, "ping\n")
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "ping\n" {
			t.Fatalf("conn %d: echo = %q, %v", i, line, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	WaitFor(t, 2*time.Second, func() bool { return h.Active() == 0 }, "all connections to close")
	c, err := net.Dial("tcp", h.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	WaitFor(t, 2*time.Second, func() bool { return h.Active() == 1 }, "the fourth connection")
	if got := h.MaxActive(); got != 3 {
		t.Fatalf("MaxActive = %d, want 3", got)
	}
	if got := h.MaxLive(); got != 3 {
		t.Fatalf("MaxLive = %d, want 3", got)
	}
}

// MaxLive stops counting a connection once its client has half-closed,
// even while the connection itself stays open.
func TestHoldMaxLiveEndsAtClientFIN(t *testing.T) {
	h := StartHold(t)
	a, err := net.Dial("tcp", h.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	WaitFor(t, 2*time.Second, func() bool { return h.live.Load() == 1 }, "one live connection")
	a.(*net.TCPConn).CloseWrite()
	WaitFor(t, 2*time.Second, func() bool { return h.live.Load() == 0 }, "the half-closed connection to stop counting")
	b, err := net.Dial("tcp", h.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	WaitFor(t, 2*time.Second, func() bool { return h.live.Load() == 1 }, "the second connection")
	if got := h.MaxLive(); got != 1 {
		t.Fatalf("MaxLive = %d, want 1: a half-closed connection was still counted", got)
	}
}

// Every backend, stopped by Cleanup while clients still hold connections,
// must leave no goroutine behind.
func TestCleanupLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	var clients []net.Conn
	t.Run("backends", func(t *testing.T) {
		backends := []interface {
			Addr() netip.AddrPort
			Active() int64
		}{
			StartEcho(t), StartHold(t), StartSilent(t), StartSink(t),
			StartNamed(t, "n"), StartNamedHTTP(t, "h"),
			StartServerClosesFirst(t, make([]byte, mib)),
		}
		for _, b := range backends {
			c, err := net.Dial("tcp", b.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
		}
		for _, b := range backends {
			WaitFor(t, 2*time.Second, func() bool { return b.Active() == 1 }, "backend to accept")
		}
	})
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	WaitFor(t, 2*time.Second, func() bool { return runtime.NumGoroutine() <= before }, "backend goroutines to exit")
}

// A port from FreeAddrs is free on every address, so a test may add the
// wildcard beside it (a reload adding 0.0.0.0:P to 127.0.0.1:P). Client
// sockets bound to other loopback addresses (the ACL and balance tests
// dial from 127.1.x.y, and leave TIME_WAITs there) do not conflict with
// 127.0.0.1:P but do with 0.0.0.0:P.
func TestFreeAddrsAreFreeOnTheWildcard(t *testing.T) {
	for range 4000 {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 1, 0, 9}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range FreeAddrs(t, 50) {
		ln, err := net.Listen("tcp4", netip.AddrPortFrom(netip.IPv4Unspecified(), a.Port()).String())
		if err != nil {
			t.Fatalf("FreeAddrs gave %s, but its port is taken on another address: %v", a, err)
		}
		ln.Close()
	}
}
