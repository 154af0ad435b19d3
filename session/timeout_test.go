package session_test

import (
	"io"
	"net"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// A client that sends a byte every 100ms is never idle for 400ms and
// must never be cut. (The margin is wide for loaded CI machines; the
// stale-clock bug itself is caught by TestNewSessionStampedAfterSleep.)
func TestActiveClientNotTimedOut(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		sink := testbed.StartSink(t)
		cfg := testConfig(eng, sink.Addr())
		cfg.Global.Workers = 1
		cfg.Frontends[0].TimeoutClient = 400 * time.Millisecond
		p, addr := startProxy(t, cfg)
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := 0; i < 12; i++ {
			time.Sleep(100 * time.Millisecond)
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte{'x'}); err != nil {
				break
			}
		}
		if n := p.Stats().Ended[session.ReasonClientTimeout]; n != 0 {
			t.Fatalf("client writing every 100ms was cut by a 400ms client timeout (%d client-timeouts)", n)
		}
	})
}

// A session accepted after the loop has idled (it sleeps up to 1s) is
// born at its accept, not at the turn before the sleep.
func TestNewSessionStampedAfterSleep(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		sink := testbed.StartSink(t)
		cfg := testConfig(eng, sink.Addr())
		cfg.Global.Workers = 1
		cfg.Frontends[0].TimeoutClient = 500 * time.Millisecond
		p, addr := startProxy(t, cfg)
		for i := 0; i < 3; i++ {
			time.Sleep(900 * time.Millisecond) // the loop sleeps up to 1s: connect near the end of its sleep
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			c.Write([]byte("x"))
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
		time.Sleep(100 * time.Millisecond)
		if cut := p.Stats().Ended[session.ReasonClientTimeout]; cut > 0 {
			t.Fatalf("%d of 3 sessions, active within 100ms of connecting, ended by a 500ms client timeout", cut)
		}
	})
}

// A client that has sent everything and half-closed is not idle while it
// waits for a slow server: only timeout_server applies then, and the
// answer, when it comes, reaches it.
func TestHalfClosedClientWaitsForSlowServer(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		slow := testbed.StartFunc(t, func(c *net.TCPConn) {
			io.Copy(io.Discard, c) // until the client's FIN
			time.Sleep(700 * time.Millisecond)
			c.Write([]byte("late answer\n"))
			c.CloseWrite()
		})
		cfg := testConfig(eng, slow.Addr())
		cfg.Frontends[0].TimeoutClient = 300 * time.Millisecond
		cfg.Backends[0].TimeoutServer = 5 * time.Second
		_, addr := startProxy(t, cfg)
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("question\n"))
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "late answer\n" {
			t.Fatalf("half-closed client got %q, %v: cut by timeout_client while the server worked", got, err)
		}
	})
}
