package session_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// integrityLoad runs conns clients that each stream random data through
// addr and check its SHA-256 on the way back, one connection after
// another, until stop. It returns how many runs passed and the failures.
func integrityLoad(t *testing.T, addr netip.AddrPort, conns int) (stop func() (ok int64, failures []error)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var passed atomic.Int64
	var failed []error
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := int64(c) << 32; ctx.Err() == nil; seed++ {
				_, err := testbed.IntegrityRun(ctx, addr, 1+int(seed%7)*9000, seed)
				switch {
				case err == nil:
					passed.Add(1)
				case ctx.Err() == nil:
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		}()
	}
	var once sync.Once
	stop = func() (int64, []error) {
		once.Do(func() { cancel(); wg.Wait() })
		return passed.Load(), failed
	}
	t.Cleanup(func() { stop() })
	return stop
}

// A server added at runtime waits in maintenance until enabled, then takes
// new sessions; a server in maint that sessions still hold cannot be
// deleted, and once they end it is, and gets nothing more. Under traffic
// the whole time: every byte comes back, no connection fails.
func TestAddAndDelServerUnderTraffic(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		first, added := testbed.StartEcho(t), testbed.StartEcho(t)
		p, addr := startProxy(t, testConfig(eng, first.Addr()))
		stop := integrityLoad(t, addr, 4)

		if err := p.AddServer("app", session.NewServer{Name: "s2", Address: added.Addr(), Weight: 100}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if n := added.Accepted(); n != 0 {
			t.Fatalf("a server added in maint got %d connections", n)
		}
		if err := p.SetServerState("app", "s2", session.AdminReady); err != nil {
			t.Fatal(err)
		}
		testbed.WaitFor(t, 5*time.Second, func() bool { return added.Accepted() >= 20 }, "the enabled server gets sessions")

		// A session held on s1 keeps it from being deleted.
		hold, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()
		// The load's sessions come and go on both servers: find the held
		// one by its client address, not by a server's session count.
		var held string
		testbed.WaitFor(t, 5*time.Second, func() bool { held = serverOf(p, hold.LocalAddr()); return held != "" }, "a session held")
		if err := p.DelServer("app", held); !errors.Is(err, session.ErrNotInMaint) {
			t.Fatalf("del server %s while ready: %v, want ErrNotInMaint", held, err)
		}
		if err := p.SetServerState("app", held, session.AdminMaint); err != nil {
			t.Fatal(err)
		}
		if err := p.DelServer("app", held); !errors.Is(err, session.ErrServerBusy) {
			t.Fatalf("del server %s with a session on it: %v, want ErrServerBusy", held, err)
		}
		hold.Close()
		testbed.WaitFor(t, 5*time.Second, func() bool { return p.DelServer("app", held) == nil }, "del server once its sessions ended")
		gone, other := first, added
		if held == "s2" {
			gone, other = added, first
		}
		before, otherBefore := gone.Accepted(), other.Accepted()
		time.Sleep(300 * time.Millisecond)
		if n := gone.Accepted() - before; n != 0 {
			t.Errorf("deleted server got %d connections", n)
		}
		if other.Accepted() == otherBefore {
			t.Error("the remaining server got nothing after the delete")
		}
		if _, _, err := p.ServerWeight("app", held); !errors.Is(err, session.ErrNoServer) {
			t.Errorf("deleted server still found: %v", err)
		}
		for _, s := range p.Snapshot().Backends[0].Servers {
			if s.Name == held {
				t.Errorf("deleted server %s still in the stats", held)
			}
		}
		ok, failures := stop()
		if len(failures) > 0 || ok == 0 {
			t.Fatalf("%d runs passed, %d failed; first: %v", ok, len(failures), failures)
		}
		// Its name is free again.
		if err := p.AddServer("app", session.NewServer{Name: held, Address: gone.Addr(), Weight: 1}); err != nil {
			t.Errorf("adding %s again: %v", held, err)
		}
	})
}

// serverOf names the server the session of client c is connected to, or
// "" while it has none.
func serverOf(p *session.Proxy, c net.Addr) string {
	for _, s := range p.Sessions() {
		if s.Client.String() == c.String() && s.State == "forwarding" {
			return s.Server
		}
	}
	return ""
}

// What add server refuses: a name in use, a backend whose balancing
// cannot take servers at runtime, check without [backend.check], bad
// values; nothing of it is left behind.
func TestAddServerRefusals(t *testing.T) {
	echo := testbed.StartEcho(t)
	cfg := testConfig("epoll", echo.Addr())
	src := *cfg.Backends[0]
	src.Name, src.Balance = "bysource", "source"
	cfg.Backends = append(cfg.Backends, &src)
	p, _ := startProxy(t, cfg)
	ok := session.NewServer{Name: "new", Address: echo.Addr(), Weight: 1}
	for _, c := range []struct {
		be   string
		ns   session.NewServer
		want error
	}{
		{"nope", ok, session.ErrNoBackend},
		{"app", session.NewServer{Name: "s1", Address: echo.Addr()}, session.ErrServerExists},
		{"bysource", ok, session.ErrStaticBalance},
		{"app", session.NewServer{Name: "c", Address: echo.Addr(), Check: true}, session.ErrNoCheck},
		{"app", session.NewServer{Name: "w", Address: echo.Addr(), Weight: 257}, nil},
		{"app", session.NewServer{Name: "p", Address: netip.AddrPortFrom(echo.Addr().Addr(), 0)}, nil},
	} {
		err := p.AddServer(c.be, c.ns)
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("add server %s/%s: %v, want %v", c.be, c.ns.Name, err, c.want)
		}
	}
	if n := len(p.Snapshot().Backends[0].Servers); n != 1 {
		t.Errorf("backend has %d servers after refusals, want 1", n)
	}
}

// Servers added at runtime stay across a reload, in the state an operator
// left them; one the new config declares itself is the config's.
func TestAddedServerSurvivesReload(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		a, b := testbed.StartEcho(t), testbed.StartEcho(t)
		addr := testbed.FreeAddrs(t, 1)[0]
		old, _ := startProxy(t, testConfigOn(eng, []netip.AddrPort{addr}, a.Addr()))
		if err := old.AddServer("app", session.NewServer{Name: "added", Address: b.Addr(), Weight: 7}); err != nil {
			t.Fatal(err)
		}
		if err := old.SetServerState("app", "added", session.AdminDrain); err != nil {
			t.Fatal(err)
		}
		next := reloadTo(t, old, testConfigOn(eng, []netip.AddrPort{addr}, a.Addr()))
		w, _, err := next.ServerWeight("app", "added")
		if err != nil || w != 7 {
			t.Fatalf("after reload: weight %d, %v; want the added server at 7", w, err)
		}
		for _, s := range next.Snapshot().Backends[0].Servers {
			if s.Name == "added" && s.Admin != "drain" {
				t.Errorf("added server %s after reload, want drain", s.Admin)
			}
		}
		if err := next.SetServerState("app", "added", session.AdminReady); err != nil {
			t.Fatal(err)
		}
		testbed.WaitFor(t, 5*time.Second, func() bool { return echoThrough(addr) && b.Accepted() > 0 }, "the carried server serves")
	})
}

func echoThrough(addr netip.AddrPort) bool {
	_, err := testbed.IntegrityRun(context.Background(), addr, 1000, 1)
	return err == nil
}

// In a checked backend a server added at runtime is checked as the
// config's are: paused while in maint, then UP, and DOWN when its server
// dies; deleting it stops its checks.
func TestAddedServerIsChecked(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		a, b := testbed.StartEcho(t), testbed.StartEcho(t)
		cfg := testConfig(eng, a.Addr())
		cfg.Backends[0].Check = quickCheck
		p, _ := startProxy(t, cfg)
		if err := p.AddServer("app", session.NewServer{Name: "s2", Address: b.Addr(), Weight: 100, Check: true}); err != nil {
			t.Fatal(err)
		}
		checks := func() uint64 {
			for _, s := range p.Servers() {
				if s.Server == "s2" && s.Check != nil {
					return s.Check.Checks
				}
			}
			return 1 << 60
		}
		time.Sleep(100 * time.Millisecond)
		if n := checks(); n != 0 {
			t.Fatalf("server in maint checked %d times", n)
		}
		if err := p.SetServerState("app", "s2", session.AdminReady); err != nil {
			t.Fatal(err)
		}
		testbed.WaitFor(t, 2*time.Second, func() bool { return checks() >= 2 && serverUp(p, "s2") }, "the added server is checked and UP")
		b.Close()
		testbed.WaitFor(t, 2*time.Second, func() bool { return !serverUp(p, "s2") }, "the added server goes DOWN when it dies")
		if err := p.SetServerState("app", "s2", session.AdminMaint); err != nil {
			t.Fatal(err)
		}
		if err := p.DelServer("app", "s2"); err != nil {
			t.Fatal(err)
		}
		if !serverUp(p, "s1") {
			t.Error("the config's server is not UP")
		}
	})
}
