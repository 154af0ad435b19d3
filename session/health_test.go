package session_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// restartable is a "who served" server on a fixed address that can be
// stopped (listener and connections closed) and started again.
type restartable struct {
	addr  netip.AddrPort
	name  string
	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func startRestartable(t *testing.T, name string) *restartable {
	r := &restartable{name: name, addr: testbed.FreeAddrs(t, 1)[0]}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start(t *testing.T) {
	ln, err := net.Listen("tcp", r.addr.String())
	if err != nil {
		t.Fatalf("restart %s on %s: %v", r.name, r.addr, err)
	}
	r.mu.Lock()
	r.ln, r.conns = ln, map[net.Conn]bool{}
	r.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = true
			r.mu.Unlock()
			go func() {
				fmt.Fprintf(c, "%s\n", r.name)
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
}

func (r *restartable) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		c.Close()
	}
}

func serverUp(p *session.Proxy, name string) bool {
	for _, s := range p.Servers() {
		if s.Server == name {
			return s.Up
		}
	}
	return false
}

func fastCheck(kind string) *session.Check {
	return &session.Check{Kind: kind, Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond,
		Rise: 2, Fall: 2, Path: "/", ExpectStatus: 200}
}

// A server killed while traffic flows is taken out after fall checks,
// every client is served meanwhile, and it comes back after rise.
func TestHealthKilledServerOutAndBack(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		a := testbed.StartNamed(t, "a")
		b := startRestartable(t, "b")
		cfg := testConfig(eng, a.Addr(), b.addr)
		cfg.Backends[0].Servers[0].Name, cfg.Backends[0].Servers[1].Name = "a", "b"
		cfg.Backends[0].Check = fastCheck("tcp")
		p, addr := startProxy(t, cfg)
		served := map[string]int{}
		for i := 0; i < 10; i++ {
			served[whoOnce(t, netip.Addr{}, addr)]++
		}
		if served["b"] == 0 {
			t.Fatalf("b served nobody before it was killed: %v", served)
		}
		b.stop()
		killed := time.Now()
		// Traffic goes on while the checks notice: every client is served.
		for !time.Now().After(killed.Add(time.Second)) {
			if n := whoOnce(t, netip.Addr{}, addr); n != "a" {
				t.Fatalf("a client reached %s after it was killed", n)
			}
		}
		if serverUp(p, "b") {
			t.Fatal("b still UP a second after it was killed (fall 2, interval 100ms)")
		}
		b.start(t)
		testbed.WaitFor(t, 3*time.Second, func() bool { return serverUp(p, "b") }, "b to come back UP")
		served = map[string]int{}
		for i := 0; i < 10; i++ {
			served[whoOnce(t, netip.Addr{}, addr)]++
		}
		if served["b"] == 0 {
			t.Fatalf("b UP again but served nobody: %v", served)
		}
		if st := p.Stats(); st.ServerTransitions < 2 || st.Ended[session.ReasonConnectFailed] != 0 {
			t.Fatalf("transitions %d (want >= 2), clients failed %d", st.ServerTransitions, st.Ended[session.ReasonConnectFailed])
		}
	})
}

func TestHealthHTTPCheck503Then200(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		var status atomic.Int32
		status.Store(503)
		var host atomic.Value
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				host.Store(r.Host)
				w.WriteHeader(int(status.Load()))
				return
			}
			fmt.Fprintln(w, "hello")
		})}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		cfg := testConfig(eng, netip.MustParseAddrPort(ln.Addr().String()))
		check := fastCheck("http")
		check.Path, check.Host = "/healthz", "app.example"
		cfg.Backends[0].Check = check
		p, addr := startProxy(t, cfg)
		testbed.WaitFor(t, 3*time.Second, func() bool { return !serverUp(p, "s1") }, "the 503 server to go DOWN")
		if h, _ := host.Load().(string); h != "app.example" {
			t.Fatalf("check sent Host %q, want app.example", h)
		}
		if _, err := testbed.DialExpectClose(addr, time.Second); err != nil {
			t.Fatalf("with its only server DOWN a client must be closed at once: %v", err)
		}
		status.Store(200)
		testbed.WaitFor(t, 3*time.Second, func() bool { return serverUp(p, "s1") }, "the server to come UP on 200")
		resp, err := http.Get("http://" + addr.String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("through the proxy: %s", resp.Status)
		}
	})
}

// redisLike answers PING with +PONG, or -ERR when failing is set.
func redisLike(t *testing.T, failing *atomic.Bool) netip.AddrPort {
	srv := testbed.StartFunc(t, func(c *net.TCPConn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.TrimSpace(line) != "PING":
				fmt.Fprint(c, "-ERR unknown command\r\n")
			case failing.Load():
				fmt.Fprint(c, "-ERR loading\r\n")
			default:
				fmt.Fprint(c, "+PONG\r\n")
			}
		}
	})
	return srv.Addr()
}

func TestHealthExpectCheckRedisLike(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		var failing atomic.Bool
		cfg := testConfig(eng, redisLike(t, &failing))
		check := fastCheck("expect")
		check.Send, check.Expect = "PING\r\n", "+PONG"
		cfg.Backends[0].Check = check
		p, _ := startProxy(t, cfg)
		testbed.WaitFor(t, 3*time.Second, func() bool {
			s := p.Servers()[0]
			return s.Check != nil && s.Check.Checks >= 3
		}, "three checks")
		if s := p.Servers()[0]; !s.Up || s.Check.CheckFailures != 0 {
			t.Fatalf("a server answering +PONG: up %v, failures %d (%s)", s.Up, s.Check.CheckFailures, s.Check.LastError)
		}
		failing.Store(true)
		testbed.WaitFor(t, 3*time.Second, func() bool { return !serverUp(p, "s1") }, "-ERR to take the server DOWN")
	})
}

func TestHealthCheckTimeoutSilentServer(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		silent := testbed.StartSilent(t)
		cfg := testConfig(eng, silent.Addr())
		check := fastCheck("http")
		check.Interval, check.Timeout = 300*time.Millisecond, 200*time.Millisecond
		cfg.Backends[0].Check = check
		p, _ := startProxy(t, cfg)
		testbed.WaitFor(t, 3*time.Second, func() bool { return !serverUp(p, "s1") }, "a server that never answers to go DOWN")
		s := p.Servers()[0].Check
		if s.LastDuration < 150*time.Millisecond || s.LastDuration > time.Second || !strings.Contains(s.LastError, "timeout") {
			t.Fatalf("last check took %v, error %q; want a timeout after ~200ms", s.LastDuration, s.LastError)
		}
	})
}

// A check stuck on a black-holed address must not slow the data path.
func TestHealthBlackholedCheckDoesNotStallWorkers(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr(), netip.MustParseAddrPort(blackhole(t)))
		check := fastCheck("tcp")
		check.Interval, check.Timeout = time.Second, time.Second
		cfg.Backends[0].Check = check
		cfg.Backends[0].TimeoutConnect = 200 * time.Millisecond
		_, addr := startProxy(t, cfg)
		time.Sleep(300 * time.Millisecond) // the first checks are in flight now
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := testbed.IntegrityRun(ctx, addr, 256<<10, int64(i)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("20 sessions took %v while a check hung on a black hole", took)
		}
	})
}

// Connect failures on live traffic take a dead server out between two
// active checks (interval 1h here, after the first check).
func TestHealthPassiveConnectFailures(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		a := testbed.StartNamed(t, "a")
		b := startRestartable(t, "b")
		cfg := testConfig(eng, a.Addr(), b.addr)
		cfg.Backends[0].Servers[0].Name, cfg.Backends[0].Servers[1].Name = "a", "b"
		check := fastCheck("tcp")
		check.Interval, check.Timeout, check.Fall = time.Hour, time.Second, 3
		cfg.Backends[0].Check = check
		p, addr := startProxy(t, cfg)
		testbed.WaitFor(t, 3*time.Second, func() bool {
			for _, s := range p.Servers() {
				if s.Check.Checks == 0 {
					return false
				}
			}
			return true
		}, "the first check of each server")
		b.stop()
		for i := 0; i < 4; i++ {
			if n := whoOnce(t, netip.Addr{}, addr); n != "a" {
				t.Fatalf("client reached %s", n)
			}
		}
		testbed.WaitFor(t, time.Second, func() bool { return !serverUp(p, "b") }, "b DOWN from live connect failures")
		for _, s := range p.Servers() {
			if s.Server == "b" && s.Check.ObservedFailures < 3 {
				t.Fatalf("b DOWN with %d observed failures", s.Check.ObservedFailures)
			}
		}
	})
}
