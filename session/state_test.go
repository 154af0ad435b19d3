package session_test

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// startRestored runs cfg from saved (a state file's servers), as a new
// process would, and returns the frontend's address.
func startRestored(t *testing.T, cfg *session.Config, saved []session.SavedServer) (*session.Proxy, netip.AddrPort) {
	t.Helper()
	p, err := session.New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	p.Restore(saved)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(time.Second) })
	return p, p.Addrs("web")[0]
}

// serverStats is server name of p's first backend as the stats see it.
func serverStats(t *testing.T, p *session.Proxy, name string) session.ServerStats {
	t.Helper()
	for _, s := range p.Snapshot().Backends[0].Servers {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no server %q", name)
	return session.ServerStats{}
}

// twoNamed is a config of servers a and b (both answering their name).
func twoNamed(t *testing.T, eng string) (*session.Config, netip.AddrPort, netip.AddrPort) {
	a, b := testbed.StartNamed(t, "a"), testbed.StartNamed(t, "b")
	cfg := testConfig(eng, a.Addr(), b.Addr())
	cfg.Backends[0].Servers[0].Name, cfg.Backends[0].Servers[1].Name = "a", "b"
	return cfg, a.Addr(), b.Addr()
}

// A drained or maintained server restored from a state file takes no
// client from the start; the others take them all.
func TestRestoreAdminState(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		for _, st := range []session.AdminState{session.AdminDrain, session.AdminMaint} {
			cfg, _, _ := twoNamed(t, eng)
			p, addr := startRestored(t, cfg, []session.SavedServer{{Backend: "app", Server: "b", Admin: st, Weight: 100, InitWeight: 100}})
			if got := serverStats(t, p, "b").Admin; got != st.String() {
				t.Fatalf("b restored as %s: admin state %s", st, got)
			}
			for range 10 {
				if n := whoOnce(t, netip.Addr{}, addr); n != "a" {
					t.Fatalf("b restored as %s took a client", st)
				}
			}
		}
	})
}

// A runtime weight is restored when the config still gives the server
// the weight saved beside it; a config that changed it wins.
func TestRestoreWeight(t *testing.T) {
	cfg, _, _ := twoNamed(t, "uring")
	cfg.Backends[0].Servers[1].Weight = 40
	p, _ := startRestored(t, cfg, []session.SavedServer{
		{Backend: "app", Server: "a", Weight: 7, InitWeight: 100}, // config unchanged: 7
		{Backend: "app", Server: "b", Weight: 3, InitWeight: 100}, // config now 40: 40
	})
	if w := serverStats(t, p, "a").Weight; w != 7 {
		t.Errorf("a: weight %d, want the saved 7", w)
	}
	if w := serverStats(t, p, "b").Weight; w != 40 {
		t.Errorf("b: weight %d, want the config's new 40 over the saved 3", w)
	}
}

// A server saved DOWN starts DOWN when its backend has checks, and comes
// back only once they pass; without checks nothing would bring it back,
// so it starts UP.
func TestRestoreDown(t *testing.T) {
	cfg, _, _ := twoNamed(t, "uring")
	cfg.Backends[0].Check = fastCheck("tcp")
	cfg.Backends[0].Check.Interval = time.Hour // the first check comes within a second
	saved := []session.SavedServer{{Backend: "app", Server: "b", Down: true, Weight: 100, InitWeight: 100}}
	p, addr := startRestored(t, cfg, saved)
	if serverUp(p, "b") {
		t.Fatal("b, saved DOWN, starts UP in a checked backend")
	}
	if n := whoOnce(t, netip.Addr{}, addr); n != "a" {
		t.Fatalf("b, saved DOWN, took a client before its checks passed")
	}
	p.Shutdown(time.Second)

	cfg, _, _ = twoNamed(t, "uring")
	p, _ = startRestored(t, cfg, saved)
	if !serverUp(p, "b") {
		t.Fatal("b, saved DOWN, starts DOWN without checks: nothing would bring it back")
	}
}

// A checked server saved DOWN comes back after rise passing checks.
func TestRestoreDownComesBack(t *testing.T) {
	cfg, _, _ := twoNamed(t, "uring")
	cfg.Backends[0].Check = fastCheck("tcp")
	// 3 checks to rise, the first within 300ms, the next a quarter
	// interval apart: at least 150ms DOWN.
	cfg.Backends[0].Check.Interval, cfg.Backends[0].Check.Rise = 300*time.Millisecond, 3
	p, _ := startRestored(t, cfg, []session.SavedServer{{Backend: "app", Server: "b", Down: true, Weight: 100, InitWeight: 100}})
	if serverUp(p, "b") {
		t.Fatal("b, saved DOWN, starts UP")
	}
	testbed.WaitFor(t, 5*time.Second, func() bool { return serverUp(p, "b") }, "b to come UP after its checks")
}

// At a reload the running generation's state wins over the file for the
// servers it has (the file may lag it by a pending write); the file
// applies to a server the running generation did not have.
func TestRestoreAtReloadRunningStateWins(t *testing.T) {
	a, b, c := testbed.StartNamed(t, "a"), testbed.StartNamed(t, "b"), testbed.StartNamed(t, "c")
	mk := func(servers ...netip.AddrPort) *session.Config {
		cfg := testConfig("uring", servers...)
		for i, s := range cfg.Backends[0].Servers {
			s.Name = string(rune('a' + i))
		}
		return cfg
	}
	old, addr := startProxy(t, mk(a.Addr(), b.Addr()))
	cfg := mk(a.Addr(), b.Addr(), c.Addr())
	cfg.Frontends[0].Binds = []netip.AddrPort{addr}
	next, err := session.New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	next.Inherit(old)
	next.Restore([]session.SavedServer{
		{Backend: "app", Server: "b", Admin: session.AdminDrain, Weight: 100, InitWeight: 100}, // stale: b runs ready
		{Backend: "app", Server: "c", Admin: session.AdminDrain, Weight: 100, InitWeight: 100},
	})
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { next.Shutdown(time.Second) })
	go old.Shutdown(time.Second)
	if got := serverStats(t, next, "b").Admin; got != "ready" {
		t.Errorf("b, ready in the running generation: %s after the reload", got)
	}
	if got := serverStats(t, next, "c").Admin; got != "drain" {
		t.Errorf("c, new to the config, saved drained: %s after the reload", got)
	}
}

// OnStateChange hears of every change a state file holds: an operator's
// admin state and weight, and a server going DOWN and UP; not of a
// command that changes nothing.
func TestOnStateChange(t *testing.T) {
	srv := startRestartable(t, "a")
	cfg := testConfig("uring", srv.addr)
	cfg.Backends[0].Servers[0].Name = "a"
	cfg.Backends[0].Check = fastCheck("tcp")
	p, err := session.New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	p.OnStateChange(func() { n.Add(1) })
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(time.Second) })
	want := func(what string, calls int64) {
		t.Helper()
		testbed.WaitFor(t, 5*time.Second, func() bool { return n.Load() == calls }, what)
	}
	p.SetServerState("app", "a", session.AdminDrain)
	want("a call for drain", 1)
	p.SetServerState("app", "a", session.AdminDrain)
	p.SetServerWeight("app", "a", 5)
	want("one call for the weight, none for the repeated drain", 2)
	p.SetServerState("app", "a", session.AdminReady)
	want("a call for ready", 3)
	srv.stop()
	testbed.WaitFor(t, 5*time.Second, func() bool { return !serverUp(p, "a") }, "a to go DOWN")
	want("a call for DOWN", 4)
	srv.start(t)
	testbed.WaitFor(t, 5*time.Second, func() bool { return serverUp(p, "a") }, "a to come UP")
	want("a call for UP", 5)
}
