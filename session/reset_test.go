package session_test

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// Aborts reach the peer as aborts: a session ended by an error or a
// timeout closes both sockets with a reset (SO_LINGER 0), so that a
// truncated stream never looks complete and no orphaned socket keeps its
// unsent data in the kernel; only a clean end closes with FIN.

// readToEnd reads c until it ends and returns how it ended: nil for a
// clean EOF.
func readToEnd(c net.Conn, within time.Duration) (int64, error) {
	c.SetReadDeadline(time.Now().Add(within))
	return io.Copy(io.Discard, c)
}

// askOne sends one byte through the proxy at addr and reads the answer
// to its end: how many bytes, and how it ended (nil for a clean EOF).
func askOne(t *testing.T, addr netip.AddrPort) (int64, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	return readToEnd(c, 5*time.Second)
}

// wantServerReset waits for the server side's read to end, which must be
// with ECONNRESET.
func wantServerReset(t *testing.T, ended <-chan error, when string) {
	t.Helper()
	select {
	case err := <-ended:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("server saw %v %s; want ECONNRESET", err, when)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("the server connection did not end")
	}
}

// A server that resets mid-stream resets its client: the client sees
// ECONNRESET, not an EOF that would pass a truncated stream off as whole.
func TestServerResetResetsClient(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		srv := testbed.StartFunc(t, func(c *net.TCPConn) {
			b := make([]byte, 1)
			c.Read(b)
			part := make([]byte, 256<<10)
			rand.Read(part)
			c.Write(part)
			time.Sleep(50 * time.Millisecond)
			c.SetLinger(0)
			c.Close() // a reset mid-stream
		})
		p, addr := startProxy(t, testConfig(eng, srv.Addr()))
		n, err := askOne(t, addr)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("client read %d bytes then %v; want ECONNRESET after the server's reset", n, err)
		}
		testbed.WaitFor(t, 2*time.Second, func() bool { return p.Stats().Ended[session.ReasonServerError] == 1 }, "a server-error end")
	})
}

// A client that resets mid-stream resets the server side too.
func TestClientResetResetsServer(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		ended := make(chan error, 1)
		srv := testbed.StartFunc(t, func(c *net.TCPConn) {
			_, err := readToEnd(c, 5*time.Second)
			ended <- err
		})
		_, addr := startProxy(t, testConfig(eng, srv.Addr()))
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		part := make([]byte, 64<<10)
		rand.Read(part)
		c.Write(part)
		time.Sleep(50 * time.Millisecond)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		wantServerReset(t, ended, "after the client's reset")
	})
}

// A clean close stays clean: the server's FIN reaches the client as EOF
// after every byte.
func TestServerFinStaysFin(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		const size = 256 << 10
		srv := testbed.StartFunc(t, func(c *net.TCPConn) {
			b := make([]byte, 1)
			c.Read(b)
			c.Write(make([]byte, size))
			c.Close()
		})
		_, addr := startProxy(t, testConfig(eng, srv.Addr()))
		n, err := askOne(t, addr)
		if err != nil || n != size {
			t.Fatalf("client read %d bytes, %v; want %d then EOF", n, err, size)
		}
	})
}

// A server that stops reading (a zero window) until timeout_server fires
// is reset, not closed with a FIN: a FIN would leave the proxy's socket
// orphaned in FIN-WAIT-1 holding its whole send queue.
func TestServerTimeoutResetsStalledServer(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		ended := make(chan error, 1)
		release := make(chan struct{})
		srv := testbed.StartFunc(t, func(c *net.TCPConn) {
			<-release // read nothing until the proxy gave up
			_, err := readToEnd(c, 5*time.Second)
			ended <- err
		})
		cfg := testConfig(eng, srv.Addr())
		cfg.Backends[0].TimeoutServer = 300 * time.Millisecond
		cfg.Frontends[0].TimeoutClient = 300 * time.Millisecond
		p, addr := startProxy(t, cfg)
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() { // more than the server's and the proxy's socket buffers hold
			b := make([]byte, 64<<10)
			for i := 0; i < 256; i++ {
				if _, err := c.Write(b); err != nil {
					return
				}
			}
		}()
		testbed.WaitFor(t, 5*time.Second, func() bool {
			st := p.Stats()
			return st.Ended[session.ReasonServerTimeout]+st.Ended[session.ReasonClientTimeout] == 1
		}, "the session to time out")
		close(release)
		wantServerReset(t, ended, "once it read again")
		// The client's side is reset too, but its writer may take the
		// error first and leave the reader a plain EOF: the stalled
		// client test checks that side.
	})
}

// A client that stops reading until timeout_client fires is reset too.
func TestClientTimeoutResetsStalledClient(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		srv := testbed.StartFunc(t, func(c *net.TCPConn) {
			b := make([]byte, 64<<10)
			for i := 0; i < 256; i++ {
				if _, err := c.Write(b); err != nil {
					return
				}
			}
			io.Copy(io.Discard, c)
		})
		cfg := testConfig(eng, srv.Addr())
		cfg.Frontends[0].TimeoutClient = 300 * time.Millisecond
		p, addr := startProxy(t, cfg)
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		testbed.WaitFor(t, 5*time.Second, func() bool { return p.Stats().Ended[session.ReasonClientTimeout] == 1 }, "the client to time out")
		if n, err := readToEnd(c, 5*time.Second); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("stalled client read %d bytes then %v; want ECONNRESET", n, err)
		}
	})
}
