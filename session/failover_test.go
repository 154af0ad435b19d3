package session_test

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// quickCheck finds a dead server within ~100ms: tcp, every 25ms, fall 2.
var quickCheck = &session.Check{Kind: "tcp", Interval: 25 * time.Millisecond, Timeout: 20 * time.Millisecond, Rise: 2, Fall: 2}

// heldOn opens a session through addr and echoes once on it, so it is
// known to be connected to a server; it returns that server's name.
func heldOn(t *testing.T, p *session.Proxy, addr netip.AddrPort, rng *rand.Rand) (net.Conn, string) {
	t.Helper()
	before := map[string]int64{}
	for _, s := range p.Snapshot().Backends[0].Servers {
		before[s.Name] = s.CurSessions
	}
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := echoOn(c, rng); err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Snapshot().Backends[0].Servers {
		if s.CurSessions > before[s.Name] {
			return c, s.Name
		}
	}
	t.Fatal("the session is on no server")
	return nil, ""
}

// closedSoon says whether c's session ends within d (an EOF or a reset).
func closedSoon(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	_, err := c.Read(make([]byte, 1))
	ne, ok := err.(net.Error)
	return err != nil && !(ok && ne.Timeout())
}

// on_down = "shutdown-sessions": a server that goes DOWN while its
// clients stay connected (a demoted primary) has its sessions closed at
// once, counted as server-down; the other server's go on. Without it
// they go on.
func TestOnDownClosesTheSessionsOfADownServer(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		for _, onDown := range []string{session.OnDownShutdownSessions, ""} {
			s1, s2 := testbed.StartEcho(t), testbed.StartEcho(t)
			cfg := testConfig(eng, s1.Addr(), s2.Addr())
			cfg.Backends[0].Check, cfg.Backends[0].OnDown = quickCheck, onDown
			p, addr := startProxy(t, cfg)
			rng := rand.New(rand.NewPCG(3, 4))
			held := map[string]net.Conn{}
			for len(held) < 2 {
				c, name := heldOn(t, p, addr, rng)
				held[name] = c
			}
			s1.StopListening()
			testbed.WaitFor(t, 2*time.Second, func() bool { return !p.Snapshot().Backends[0].Servers[0].Up }, "s1 DOWN")
			if got := closedSoon(held["s1"], time.Second); got != (onDown != "") {
				t.Errorf("on_down %q: s1's session closed %v", onDown, got)
			}
			if err := echoOn(held["s2"], rng); err != nil {
				t.Errorf("on_down %q: s2's session: %v", onDown, err)
			}
			want := uint64(0)
			if onDown != "" {
				want = 1
			}
			testbed.WaitFor(t, time.Second, func() bool { return p.Stats().Ended[session.ReasonServerDown] == want }, "server-down counted")
		}
	})
}

// maint is out too: on_down closes the sessions of a server put in maint,
// as HAProxy's on-marked-down does.
func TestOnDownAppliesToMaint(t *testing.T) {
	s1 := testbed.StartEcho(t)
	cfg := testConfig("uring", s1.Addr())
	cfg.Backends[0].OnDown = session.OnDownShutdownSessions
	p, addr := startProxy(t, cfg)
	c, _ := heldOn(t, p, addr, rand.New(rand.NewPCG(5, 6)))
	if err := p.SetServerState("app", "s1", session.AdminDrain); err != nil {
		t.Fatal(err)
	}
	if closedSoon(c, 200*time.Millisecond) {
		t.Fatal("drain closed the session")
	}
	if err := p.SetServerState("app", "s1", session.AdminMaint); err != nil {
		t.Fatal(err)
	}
	if !closedSoon(c, time.Second) {
		t.Fatal("maint with on_down left the session open")
	}
}

// on_up = "shutdown-backup-sessions": when the primary comes back, the
// backup's sessions are closed (server-up) so their clients return to it.
func TestOnUpClosesTheBackupsSessions(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		primary, backup := testbed.StartEcho(t), testbed.StartEcho(t)
		cfg := testConfigOn(eng, testbed.FreeAddrs(t, 1), primary.Addr(), backup.Addr())
		be := cfg.Backends[0]
		be.Check, be.OnUp, be.Servers[1].Backup = quickCheck, session.OnUpShutdownBackupSessions, true
		p, addr := startProxy(t, cfg)
		rng := rand.New(rand.NewPCG(7, 8))
		primary.StopListening()
		testbed.WaitFor(t, 2*time.Second, func() bool { return !p.Snapshot().Backends[0].Servers[0].Up }, "the primary DOWN")
		c, name := heldOn(t, p, addr, rng)
		if name != "s2" {
			t.Fatalf("with the primary DOWN a session went to %s", name)
		}
		back := restartEcho(t, primary.Addr())
		testbed.WaitFor(t, 2*time.Second, func() bool { return p.Snapshot().Backends[0].Servers[0].Up }, "the primary UP again")
		if !closedSoon(c, time.Second) {
			t.Fatal("the backup's session outlived the primary's return")
		}
		if _, name := heldOn(t, p, addr, rng); name != "s1" {
			t.Errorf("after the primary came back a session went to %s", name)
		}
		if n := p.Stats().Ended[session.ReasonServerUp]; n != 1 {
			t.Errorf("server-up counted %d, want 1", n)
		}
		_ = back
	})
}

// restartEcho listens again at addr, with echo handlers.
func restartEcho(t *testing.T, addr netip.AddrPort) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatalf("listen again at %v: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go testbed.EchoConn(c.(*net.TCPConn))
		}
	}()
	return ln
}

// failback = false, the Patroni recipe: after a failover to the backup,
// the recovered primary gets no new session until the backup fails or an
// operator drains it; with on_down, sessions are never on both at once.
func TestNoFailback(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		primary, backup := testbed.StartEcho(t), testbed.StartEcho(t)
		cfg := testConfig(eng, primary.Addr(), backup.Addr())
		be := cfg.Backends[0]
		be.Check, be.NoFailback, be.OnDown, be.Servers[1].Backup = quickCheck, true, session.OnDownShutdownSessions, true
		p, addr := startProxy(t, cfg)
		rng := rand.New(rand.NewPCG(9, 10))
		onBoth := func() bool {
			sv := p.Snapshot().Backends[0].Servers
			return sv[0].CurSessions > 0 && sv[1].CurSessions > 0
		}
		sessionsTo := func(n int, want string) {
			t.Helper()
			for i := 0; i < n; i++ {
				if _, name := heldOn(t, p, addr, rng); name != want {
					t.Fatalf("session %d went to %s, want %s", i, name, want)
				}
				if onBoth() {
					t.Fatal("sessions on the primary and the backup at once")
				}
			}
		}
		sessionsTo(5, "s1")
		primary.StopListening()
		testbed.WaitFor(t, 2*time.Second, func() bool { return p.Snapshot().Backends[0].Servers[0].CurSessions == 0 }, "the primary's sessions closed (on_down)")
		sessionsTo(5, "s2")
		restartEcho(t, primary.Addr())
		testbed.WaitFor(t, 2*time.Second, func() bool { return p.Snapshot().Backends[0].Servers[0].Up }, "the primary UP again")
		sessionsTo(10, "s2") // no failback
		// An operator moves them: drain the backup (its sessions go on),
		// the primary takes the new ones, and keeps them once the backup
		// is ready again.
		if err := p.SetServerState("app", "s2", session.AdminDrain); err != nil {
			t.Fatal(err)
		}
		if _, name := heldOn(t, p, addr, rng); name != "s1" {
			t.Fatalf("with the backup drained a session went to %s", name)
		}
		if err := p.SetServerState("app", "s2", session.AdminReady); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			if _, name := heldOn(t, p, addr, rng); name != "s1" {
				t.Fatalf("after the move a session went to %s", name)
			}
		}
	})
}
