package session_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// An accepted fd at or above maxsock is closed and counted, and the
// process goes on running.
func TestMaxsockClosesAndCounts(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Global.MaxSock = 3 // every accepted fd is above it
		p, addr := startProxy(t, cfg)
		if _, err := testbed.DialExpectClose(addr, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		testbed.WaitFor(t, 2*time.Second, func() bool {
			st := p.Stats()
			return st.AcceptOutcomes[session.AcceptMaxSock] >= 1 && st.Paused[session.LimitSystem] >= 1
		}, "a maxsock rejection and a listener pause")
		if st := p.Stats(); st.Accepted != 0 {
			t.Fatalf("%d sessions started above maxsock", st.Accepted)
		}
	})
}

// blackhole returns the address of a listener whose accept queue is full,
// so further SYNs are dropped and connects hang until they time out.
func blackhole(t *testing.T) (addr string) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	unix.Listen(fd, 0)
	sa, _ := unix.Getsockname(fd)
	addr = (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}).String()
	// Fill the queue: with backlog 0 the kernel takes one, maybe two.
	for i := 0; i < 4; i++ {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.Dial("tcp", addr); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}

func TestConnectTimeoutRetriesThenFails(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		hole := blackhole(t)
		cfg := testConfig(eng, netip.MustParseAddrPort(hole))
		cfg.Backends[0].TimeoutConnect = 150 * time.Millisecond
		cfg.Backends[0].Retries = 2
		p, addr := startProxy(t, cfg)
		took, err := testbed.DialExpectClose(addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took < 400*time.Millisecond || took > 3*time.Second {
			t.Fatalf("client closed after %v; want 3 attempts of 150ms", took)
		}
		testbed.WaitFor(t, time.Second, func() bool { return p.Stats().Ended[session.ReasonConnectFailed] == 1 }, "connect-failed")
		if st := p.Stats(); st.ConnTimeouts != 3 || st.ConnAttempts != 3 {
			t.Fatalf("connect timeouts %d, attempts %d; want 3 and 3", st.ConnTimeouts, st.ConnAttempts)
		}
	})
}

// With a pool far smaller than the traffic needs, receives wait for
// buffers and every byte still arrives.
func TestTinyBufferPoolLosesNothing(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Global.Buffers = 16
		cfg.Global.BufSize = 4 << 10
		cfg.Global.Splice = false // long streams would leave the pool alone
		p, addr := startProxy(t, cfg)
		testbed.IntegrityMany(t, addr, 24, 2<<20)
		if st := p.Stats(); st.BufWaits == 0 {
			t.Errorf("no receive found the pool empty (%+v): the wait path was not exercised", st.Counters)
		}
	})
}

// A client that writes but never reads: the proxy must stop reading it
// once the echo path backs up, rather than buffer without bound.
func TestSlowReaderPausesProducer(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		_, addr := startProxy(t, testConfig(eng, echo.Addr()))
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		chunk := make([]byte, 64<<10)
		var written int64
		const limit = 256 << 20
		for written < limit {
			c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
			n, err := c.Write(chunk)
			written += int64(n)
			if err != nil {
				break // stalled: backpressure reached the client
			}
		}
		// Socket buffers on the way hold some megabytes; the proxy itself at
		// most 2 x 4 buffers. 256 MiB accepted would mean unbounded buffering.
		if written >= limit {
			t.Fatalf("client wrote %d MiB without reading a byte: no backpressure", written>>20)
		}
		t.Logf("client stalled after %d KiB", written>>10)
		// Other sessions are served meanwhile.
		if _, err := testbed.IntegrityRun(context.Background(), addr, 1<<20, 5); err != nil {
			t.Fatalf("a fresh session while one is stalled: %v", err)
		}
		// Once the client reads, every byte it wrote comes back.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.(*net.TCPConn).CloseWrite()
		read, err := io.Copy(io.Discard, c)
		if err != nil || read != written {
			t.Fatalf("stalled client read back %d of %d bytes: %v", read, written, err)
		}
	})
}

// Near a limit, accepts go one at a time: clients past the limit wait in
// the kernel backlog, not accepted and parked by a multishot accept, each
// holding an fd the fd budget does not count. At most one waits parked
// per socket.
func TestAtTheLimitClientsWaitInTheBacklog(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Global.Workers = 1
		cfg.Frontends[0].MaxConn = 2
		p, addr := startProxy(t, cfg)
		before := openFds(t)
		var held []net.Conn
		for i := 0; i < 40; i++ { // a burst, while the limit still has room
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		testbed.WaitFor(t, 3*time.Second, func() bool { return p.Stats().CurConns == 2 }, "two sessions")
		time.Sleep(200 * time.Millisecond)
		// The test's own 40 client sockets, two sessions of 2 fds, the
		// echo backend's 2, and at most one client accepted past the limit.
		if grew := openFds(t) - before; grew > 40+4+2+1 {
			t.Errorf("fds grew by %d for 40 clients and 2 sessions: the proxy accepted %d past its limit", grew, grew-46)
		}
		if parked := p.Stats().Parked; parked > 1 {
			t.Errorf("%d clients parked past the limit; want at most 1 (the rest in the backlog)", parked)
		}
		for _, c := range held {
			c.Close()
		}
	})
}
