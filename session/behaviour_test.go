package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// A client that shuts its write side still receives the whole response:
// the sink answers only after it has seen the client's FIN.
func TestHalfCloseClientFirst(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		sink := testbed.StartSink(t)
		_, addr := startProxy(t, testConfig(eng, sink.Addr()))
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		payload := make([]byte, 3<<20)
		rand.Read(payload)
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		answer, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read the answer after half-closing: %v", err)
		}
		want := fmt.Sprintf("%d %s\n", len(payload), testbed.SHA256Hex(payload))
		if string(answer) != want {
			t.Fatalf("server saw %q, want %q", answer, want)
		}
	})
}

// A server that half-closes first still gets the whole request delivered
// after its FIN has been forwarded to the client.
func TestHalfCloseServerFirst(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		transferServerFirst(t, func(srv netip.AddrPort) *session.Config { return testConfig(eng, srv) })
	})
}

// A loop that busy-polls forwards the same bytes: bulk both ways with
// half-closes, and small request/response turns, where it spins.
func TestBusyPollForwards(t *testing.T) {
	withPoll := func(srv netip.AddrPort) *session.Config {
		cfg := testConfig("uring", srv)
		cfg.Global.BusyPoll = time.Millisecond
		return cfg
	}
	transferServerFirst(t, withPoll)
	echo := testbed.StartEcho(t)
	_, addr := startProxy(t, withPoll(echo.Addr()))
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	msg, back := make([]byte, 512), make([]byte, 512)
	for i := 0; i < 2000; i++ {
		rand.Read(msg)
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("turn %d: %v", i, err)
		}
		if _, err := io.ReadFull(c, back); err != nil || !bytes.Equal(back, msg) {
			t.Fatalf("turn %d: echo %v, equal %v", i, err, bytes.Equal(back, msg))
		}
	}
}

// transferServerFirst runs 8 clients through a proxy configured by cfg in
// front of a server that sends 1 MiB and closes first, each client then
// sending 2 MiB, and checks every byte both ways by SHA-256.
func transferServerFirst(t *testing.T, cfg func(srv netip.AddrPort) *session.Config) {
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	srv := testbed.StartServerClosesFirst(t, payload)
	_, addr := startProxy(t, cfg(srv.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const conns = 8
	var wg sync.WaitGroup
	sent := make([]testbed.Transfer, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := testbed.ReceiveThenSend(ctx, addr, 2<<20, int64(i+1))
			if err != nil {
				t.Error(err)
			}
			if tr.ReceivedSHA256 != testbed.SHA256Hex(payload) {
				t.Errorf("client %d received %d bytes, not the server's payload", i, tr.Received)
			}
			sent[i] = tr
		}()
	}
	wg.Wait()
	got, err := srv.Results(conns, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, tr := range sent {
		want[tr.SentSHA256] = true
	}
	for _, r := range got {
		if r.Err != nil || !want[r.SHA256] || r.Bytes != 2<<20 {
			t.Errorf("server received %d bytes (%v), hash not among what clients sent", r.Bytes, r.Err)
		}
	}
}

// holdClients runs n clients that each get an echo of one byte, hold the
// session for hold, then close. It returns how many were served.
func holdClients(t *testing.T, addr netip.AddrPort, n int, hold time.Duration) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			var b [1]byte
			if _, err := c.Write([]byte{'x'}); err != nil {
				t.Errorf("client %d write: %v", i, err)
				return
			}
			if _, err := io.ReadFull(c, b[:]); err != nil {
				t.Errorf("client %d was not served: %v", i, err)
				return
			}
			time.Sleep(hold)
			mu.Lock()
			served++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return served
}

// Frontend and global maxconn = 5 with 20 clients: at most 5 sessions at
// once, all 20 served in the end, none refused (they wait in the backlog).
func TestMaxconnQueuesInBacklog(t *testing.T) {
	cases := []struct {
		name  string
		limit func(*session.Config)
		cause session.Limit
	}{
		{"frontend", func(c *session.Config) { c.Frontends[0].MaxConn = 5 }, session.LimitFrontend},
		{"global", func(c *session.Config) { c.Global.MaxConn = 5 }, session.LimitGlobal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEngines(t, func(t *testing.T, eng string) {
				hold := testbed.StartHold(t)
				cfg := testConfig(eng, hold.Addr())
				c.limit(cfg)
				p, addr := startProxy(t, cfg)
				if served := holdClients(t, addr, 20, 150*time.Millisecond); served != 20 {
					t.Fatalf("%d of 20 clients served", served)
				}
				st := p.Stats()
				if hold.MaxLive() != 5 || st.MaxConns > 5 {
					t.Fatalf("maxconn 5: the backend saw %d sessions at once (want exactly 5), the proxy %d", hold.MaxLive(), st.MaxConns)
				}
				if st.Accepted != 20 || st.AcceptOutcomes[session.AcceptOverflow] != 0 || st.Paused[c.cause] == 0 {
					t.Fatalf("accepted %d (want 20), overflow %d, paused by %s %d times",
						st.Accepted, st.AcceptOutcomes[session.AcceptOverflow], c.cause, st.Paused[c.cause])
				}
			})
		})
	}
}

func TestDeadServerClosesClientAfterRetries(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		dead := testbed.DeadAddr(t)
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, dead)
		addSecondFrontend(cfg, echo.Addr())
		p := startProxyOnly(t, cfg)
		addr := p.Addrs("web")[0]
		if _, err := testbed.DialExpectClose(addr, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		testbed.WaitFor(t, 2*time.Second, func() bool { return p.Stats().Ended[session.ReasonConnectFailed] == 1 }, "the session to end as connect-failed")
		st := p.Stats()
		if st.ConnAttempts != 4 || st.Retries != 3 || st.ConnFailures != 4 {
			t.Fatalf("retries = 3: want 4 attempts, 3 retries, 4 failures; got %d, %d, %d", st.ConnAttempts, st.Retries, st.ConnFailures)
		}
		// The process keeps serving other sessions.
		if _, err := testbed.IntegrityRun(context.Background(), p.Addrs("other")[0], 256<<10, 7); err != nil {
			t.Fatalf("other frontend after a dead backend: %v", err)
		}
	})
}

func TestOneDeadServerEveryClientServedByTheLiveOne(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		live := testbed.StartNamed(t, "live")
		p, addr := startProxy(t, testConfig(eng, testbed.DeadAddr(t), live.Addr()))
		for i := 0; i < 20; i++ {
			name, err := testbed.ReadLine(addr, 5*time.Second)
			if err != nil || name != "live" {
				t.Fatalf("client %d: got %q, %v; want the live server", i, name, err)
			}
		}
		st := p.Stats()
		if st.Redispatches == 0 || st.Retries < 3*st.Redispatches || st.Ended[session.ReasonConnectFailed] != 0 {
			t.Fatalf("redispatches %d, retries %d (3 per redispatch), connect-failed sessions %d",
				st.Redispatches, st.Retries, st.Ended[session.ReasonConnectFailed])
		}
	})
}

func TestRoundRobinAlternates(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		a, b := testbed.StartNamed(t, "a"), testbed.StartNamed(t, "b")
		_, addr := startProxy(t, testConfig(eng, a.Addr(), b.Addr()))
		var got []string
		for i := 0; i < 10; i++ {
			name, err := testbed.ReadLine(addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, name)
		}
		for i := 1; i < len(got); i++ {
			if got[i] == got[i-1] {
				t.Fatalf("round robin did not alternate: %s", strings.Join(got, " "))
			}
		}
	})
}

func TestIdleClientTimeout(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Frontends[0].TimeoutClient = 300 * time.Millisecond
		p, addr := startProxy(t, cfg)
		took, err := testbed.DialExpectClose(addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took < 250*time.Millisecond || took > 2*time.Second {
			t.Fatalf("idle client closed after %v, want about 300ms", took)
		}
		testbed.WaitFor(t, time.Second, func() bool { return p.Stats().Ended[session.ReasonClientTimeout] == 1 }, "a client-timeout count")
	})
}

func TestSilentServerTimeout(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		silent := testbed.StartSilent(t)
		cfg := testConfig(eng, silent.Addr())
		cfg.Backends[0].TimeoutServer = 300 * time.Millisecond
		p, addr := startProxy(t, cfg)
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := io.Copy(io.Discard, c); !errors.Is(err, syscall.ECONNRESET) || n != 0 {
			t.Fatalf("read %d bytes, %v; want a reset with nothing (a timeout is an abort)", n, err)
		}
		if took := time.Since(start); took < 250*time.Millisecond || took > 2*time.Second {
			t.Fatalf("closed after %v, want about 300ms", took)
		}
		testbed.WaitFor(t, time.Second, func() bool { return p.Stats().Ended[session.ReasonServerTimeout] == 1 }, "a server-timeout count")
		testbed.WaitFor(t, time.Second, func() bool { return silent.Closed() == 1 }, "the server connection to be closed")
	})
}

func TestShutdownDrainsThenKills(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		hold := testbed.StartHold(t)
		cfg := testConfig(eng, hold.Addr())
		p := startProxyOnly(t, cfg)
		addr := p.Addrs("web")[0]
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("x"))
		var b [1]byte
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, b[:]); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		start := time.Now()
		go func() { p.Shutdown(time.Second); close(done) }()
		// New clients are refused once the listeners are closed ...
		testbed.WaitFor(t, 2*time.Second, func() bool {
			c2, err := net.Dial("tcp", addr.String())
			if err == nil {
				c2.Close()
			}
			return err != nil
		}, "the listener to close")
		// ... while the live session still works during the grace period.
		c.Write([]byte("y"))
		if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 'y' {
			t.Fatalf("live session during grace: %q %v", b, err)
		}
		<-done
		if took := time.Since(start); took < 950*time.Millisecond || took > 4*time.Second {
			t.Fatalf("shutdown with 1s grace took %v", took)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("session still open after the grace period")
		}
		if st := p.Stats(); st.Ended[session.ReasonKilled] != 1 {
			t.Fatalf("killed sessions %d, want 1", st.Ended[session.ReasonKilled])
		}
	})
}

func TestIPv6Bind(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Frontends[0].Binds = []netip.AddrPort{netip.MustParseAddrPort("[::1]:0")}
		_, addr := startProxy(t, cfg)
		if !addr.Addr().Is6() {
			t.Fatalf("bound %s", addr)
		}
		if _, err := testbed.IntegrityRun(context.Background(), addr, 1<<20, 3); err != nil {
			t.Fatal(err)
		}
	})
}

// addSecondFrontend adds frontend "other" → backend "other" with one server.
func addSecondFrontend(cfg *session.Config, srv netip.AddrPort) {
	be := *cfg.Backends[0]
	be.Name = "other"
	be.Servers = []*session.Server{{Name: "o1", Address: srv, Weight: 100}}
	fe := *cfg.Frontends[0]
	fe.Name, fe.BackendName, fe.Backend = "other", "other", &be
	cfg.Frontends = append(cfg.Frontends, &fe)
	cfg.Backends = append(cfg.Backends, &be)
}

func startProxyOnly(t *testing.T, cfg *session.Config) *session.Proxy {
	p, _ := startProxy(t, cfg)
	return p
}
