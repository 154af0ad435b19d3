package session_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"ringproxy/session"
	"ringproxy/session/resolve"
	"ringproxy/session/testbed"
)

// namedConfig is testConfig with one server named fqdn on port, resolved
// through zone with short TTLs and holds.
func namedConfig(eng string, z *testbed.Zone, fqdn string, port uint16, initAddr ...string) *session.Config {
	cfg := testConfig(eng)
	cfg.Backends[0].Servers = []*session.Server{{Name: "s1", Address: netip.AddrPortFrom(netip.Addr{}, port), Weight: 100,
		FQDN: fqdn, InitAddr: initAddr}}
	rc := resolve.Defaults()
	rc.Nameservers = []netip.AddrPort{z.Addr()}
	rc.Timeout, rc.Retries = 100*time.Millisecond, 0
	rc.TTLMin, rc.TTLMax = 30*time.Millisecond, time.Second
	rc.HoldValid, rc.HoldNX = 600*time.Millisecond, 200*time.Millisecond
	cfg.Resolvers = &session.Resolvers{Config: rc}
	return cfg
}

func server0(p *session.Proxy) session.ServerStats { return p.Snapshot().Backends[0].Servers[0] }

// waitAddr waits until the server's address is want and it is in
// service.
func waitAddr(t *testing.T, p *session.Proxy, want netip.AddrPort) {
	t.Helper()
	testbed.WaitFor(t, 5*time.Second, func() bool {
		s := server0(p)
		return s.Addr == want.String() && !s.Resolution.Maint
	}, "the server at "+want.String())
}

// A named server starts in maintenance with init_addr none, comes in
// with its first answer, and follows a changed record under traffic:
// no session fails, new ones go to the new address.
func TestNamedServerFollowsDNS(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		one := testbed.StartEcho(t)
		port := one.Addr().Port()
		two := testbed.StartEchoOn(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port).String())
		z := testbed.StartZone(t)
		z.Silence("app.internal") // not yet: the server must wait in maintenance
		p, addr := startProxy(t, namedConfig(eng, z, "app.internal", port, session.InitNone))
		if s := server0(p); !s.Resolution.Maint || s.Addr != "" || s.TakesSessions() {
			t.Fatalf("with init_addr none and no answer: %+v, want it out, without an address", s)
		}
		z.Set(t, "app.internal", "app.internal. 0 IN A 127.0.0.1")
		waitAddr(t, p, one.Addr())
		tr := startTraffic(addr, 2, 64<<10)
		tr.waitRuns(t, 10)
		z.Set(t, "app.internal", "app.internal. 0 IN A 127.0.0.2")
		waitAddr(t, p, two.Addr())
		tr.waitRuns(t, 10)
		before := one.Accepted()
		tr.waitRuns(t, 10)
		tr.end(t)
		if after := one.Accepted(); after != before {
			t.Errorf("%d sessions went to the old address after the change", after-before)
		}
		s := server0(p)
		if s.AddrChanges != 2 || s.Resolution.State != "ok" || s.Resolution.FQDN != "app.internal" {
			t.Errorf("stats: %d address changes, resolution %+v; want 2, ok", s.AddrChanges, s.Resolution)
		}
	})
}

// A failing nameserver (silence, SERVFAIL) keeps the last good answer
// for hold_valid, an NXDOMAIN for hold_nx; then the server is out (MAINT
// (resolution)), and comes back when the name resolves.
func TestNamedServerHolds(t *testing.T) {
	echo := testbed.StartEcho(t)
	z := testbed.StartZone(t)
	z.Set(t, "db.internal", "db.internal. 0 IN A 127.0.0.1")
	p, addr := startProxy(t, namedConfig("epoll", z, "db.internal", echo.Addr().Port(), session.InitNone))
	waitAddr(t, p, echo.Addr())
	serves := func() bool {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			return false
		}
		_, err = c.Read(make([]byte, 1))
		return err == nil
	}
	for _, fail := range []struct {
		name string
		do   func()
		hold time.Duration
	}{
		{"timeout", func() { z.Silence("db.internal") }, 600 * time.Millisecond},
		{"SERVFAIL", func() { z.Fail("db.internal", dns.RcodeServerFailure) }, 600 * time.Millisecond},
		{"NXDOMAIN", func() { z.Set(t, "db.internal") }, 200 * time.Millisecond},
	} {
		start := time.Now()
		fail.do()
		if fail.hold > 300*time.Millisecond {
			testbed.WaitFor(t, 5*time.Second, func() bool { return server0(p).Resolution.State == "held" }, fail.name+": held")
			if !serves() {
				t.Errorf("%s: the held address does not serve", fail.name)
			}
		}
		testbed.WaitFor(t, 5*time.Second, func() bool { return server0(p).Resolution.Maint }, fail.name+": out")
		if took := time.Since(start); took < fail.hold-50*time.Millisecond {
			t.Errorf("%s: out after %v, before its hold of %v", fail.name, took, fail.hold)
		} else if fail.hold < 300*time.Millisecond && took > 500*time.Millisecond {
			t.Errorf("%s: out after %v; hold_nx is %v (hold_valid, 600ms, must not apply)", fail.name, took, fail.hold)
		}
		s := server0(p)
		if s.TakesSessions() || !strings.Contains(s.Resolution.LastError, "db.internal") || s.Resolution.State != "out" {
			t.Errorf("%s: out, but %+v", fail.name, s)
		}
		if serves() {
			t.Errorf("%s: a session was served by a server out by resolution", fail.name)
		}
		z.Set(t, "db.internal", "db.internal. 0 IN A 127.0.0.1")
		waitAddr(t, p, echo.Addr())
		if !serves() {
			t.Errorf("%s: back, but does not serve", fail.name)
		}
	}
	if r := server0(p).Resolution; r.Outs != 3 || r.Failures != 3 {
		t.Errorf("counted %d outs, %d failures; want 3 each", r.Outs, r.Failures)
	}
}

// init_addr is tried in order at start: an IP literal is taken as is;
// when every method fails, Start says which server and why.
func TestInitAddr(t *testing.T) {
	z := testbed.StartZone(t)
	z.Silence("later.internal")
	p, _ := startProxy(t, namedConfig("epoll", z, "later.internal", 8080, "192.0.2.7"))
	if s := server0(p); s.Addr != "192.0.2.7:8080" || s.Resolution.Maint {
		t.Fatalf("init_addr 192.0.2.7: %+v", s)
	}
	// libc: the system's resolver (the hosts file has localhost).
	z.Set(t, "localhost", "localhost. 0 IN A 127.0.0.1")
	p, _ = startProxy(t, namedConfig("epoll", z, "localhost", 8080, session.InitLibc))
	if s := server0(p); s.Addr != "127.0.0.1:8080" {
		t.Fatalf("init_addr libc for localhost: %+v", s)
	}
	cfg := namedConfig("epoll", z, "nothere.invalid", 8080, session.InitLibc)
	px, err := session.New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	err = px.Start()
	if err == nil {
		px.Shutdown(0)
		t.Fatal("a name libc cannot resolve, without none: started")
	}
	if !strings.Contains(err.Error(), `backend app server s1: could not resolve "nothere.invalid" at start (libc:`) ||
		!strings.Contains(err.Error(), `add "none" to init_addr`) {
		t.Errorf("the start error: %v", err)
	}
}

// A reload carries a named server's address over: the new generation
// serves at once, with no init_addr again, even while the nameserver is
// silent; its own resolution then goes on from there.
func TestReloadKeepsResolvedAddress(t *testing.T) {
	echo := testbed.StartEcho(t)
	z := testbed.StartZone(t)
	z.Set(t, "app.internal", "app.internal. 0 IN A 127.0.0.1")
	cfg := namedConfig("epoll", z, "app.internal", echo.Addr().Port(), session.InitNone)
	old, _ := startProxy(t, cfg)
	waitAddr(t, old, echo.Addr())
	z.Silence("app.internal")
	cfg = namedConfig("epoll", z, "app.internal", echo.Addr().Port(), session.InitNone)
	cfg.Frontends[0].Binds = old.Addrs("web")
	next := reloadTo(t, old, cfg)
	if s := server0(next); s.Addr != echo.Addr().String() || s.Resolution.Maint {
		t.Fatalf("after the reload: %+v, want it at %v in service", s, echo.Addr())
	}
	if err := echoOnce(next.Addrs("web")[0], rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatalf("the new generation: %v", err)
	}
}

// A checked named server without an address waits unchecked; once its
// name resolves it is checked there, and out by resolution its checks
// pause, as in maint.
func TestNamedServerChecked(t *testing.T) {
	echo := testbed.StartEcho(t)
	z := testbed.StartZone(t)
	z.Silence("app.internal")
	cfg := namedConfig("epoll", z, "app.internal", echo.Addr().Port(), session.InitNone)
	cfg.Backends[0].Check = &session.Check{Kind: "tcp", Interval: 25 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 1, Fall: 2}
	p, _ := startProxy(t, cfg)
	if c := server0(p).Check; c == nil || !c.Paused {
		t.Fatalf("unresolved: check %+v, want paused", c)
	}
	n := echo.Accepted()
	z.Set(t, "app.internal", "app.internal. 0 IN A 127.0.0.1")
	waitAddr(t, p, echo.Addr())
	testbed.WaitFor(t, 5*time.Second, func() bool { s := server0(p); return s.Up && s.Check.Checks > 0 && !s.Check.Paused }, "checked at its address")
	if echo.Accepted() == n {
		t.Error("no check reached the resolved address")
	}
	z.Set(t, "app.internal")
	testbed.WaitFor(t, 5*time.Second, func() bool { s := server0(p); return s.Resolution.Maint && s.Check.Paused && !s.Up }, "out, checks paused")
	z.Set(t, "app.internal", "app.internal. 0 IN A 127.0.0.1")
	testbed.WaitFor(t, 5*time.Second, func() bool { s := server0(p); return s.Up && !s.Check.Paused }, "back, checked")
}

// templateConfig is testConfig with a server_template of count slots
// filled from fqdn (SRV when port is 0) through zone.
func templateConfig(eng string, z *testbed.Zone, fqdn string, port uint16, count int) *session.Config {
	cfg := namedConfig(eng, z, "unused.internal", 1)
	tpl := &session.Template{Name: "web", Count: count, FQDN: fqdn, SRV: port == 0, Port: port}
	cfg.Backends[0].Servers = nil
	for i := 1; i <= count; i++ {
		cfg.Backends[0].Servers = append(cfg.Backends[0].Servers, &session.Server{Name: "web" + string(rune('0'+i)),
			Address: netip.AddrPortFrom(netip.Addr{}, port), Weight: 100, FQDN: fqdn, Template: tpl})
	}
	return cfg
}

// slots says what each slot holds: its address and weight, or "-" when
// it is empty (out by resolution).
func slots(p *session.Proxy) string {
	var out []string
	for _, s := range p.Snapshot().Backends[0].Servers {
		if s.Resolution.Maint {
			out = append(out, "-")
			continue
		}
		out = append(out, fmt.Sprintf("%s/%d", s.Addr, s.Weight))
	}
	return strings.Join(out, " ")
}

func waitSlots(t *testing.T, p *session.Proxy, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for slots(p) != want {
		if time.Now().After(deadline) {
			t.Fatalf("slots %q, want %q", slots(p), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An SRV template fills its slots with the records' targets, ports and
// weights (HAProxy's (weight+255)/256), keeps a slot's target while the
// answer has it, fills a free slot with a new one and empties the slot
// of one that left, under traffic without a failed session.
func TestTemplateSRV(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		e := []*testbed.Echo{testbed.StartEcho(t), testbed.StartEcho(t), testbed.StartEcho(t)}
		rec := func(weight, i int) string {
			return fmt.Sprintf("_app._tcp.web.internal. 0 IN SRV 10 %d %d node%d.internal.", weight, e[i].Addr().Port(), i)
		}
		z := testbed.StartZone(t)
		for i := range e {
			z.Set(t, fmt.Sprintf("node%d.internal", i), fmt.Sprintf("node%d.internal. 0 IN A 127.0.0.1", i))
		}
		z.Set(t, "_app._tcp.web.internal", rec(256, 0), rec(768, 1))
		p, addr := startProxy(t, templateConfig(eng, z, "_app._tcp.web.internal", 0, 3))
		// The heavier record first: SRV order is priority, then weight.
		waitSlots(t, p, fmt.Sprintf("%v/3 %v/1 -", e[1].Addr(), e[0].Addr()))
		tr := startTraffic(addr, 2, 64<<10)
		tr.waitRuns(t, 10)
		z.Set(t, "_app._tcp.web.internal", rec(256, 0), rec(768, 1), rec(65535, 2))
		waitSlots(t, p, fmt.Sprintf("%v/3 %v/1 %v/256", e[1].Addr(), e[0].Addr(), e[2].Addr()))
		tr.waitRuns(t, 10)
		z.Set(t, "_app._tcp.web.internal", rec(256, 0), rec(65535, 2))
		waitSlots(t, p, fmt.Sprintf("- %v/1 %v/256", e[0].Addr(), e[2].Addr()))
		tr.waitRuns(t, 10)
		before := e[1].Accepted()
		tr.waitRuns(t, 10)
		tr.end(t)
		if e[1].Accepted() != before {
			t.Errorf("sessions reached the target that left the answer")
		}
		if e[2].Accepted() == 0 {
			t.Error("the slot filled later took no session")
		}
		st := p.Snapshot().Backends[0].Servers[2].Resolution
		if st.Target != "node2.internal" || st.Template != "web" || !st.SRV {
			t.Errorf("web3's resolution: %+v", st)
		}
	})
}

// A template on a host name fills a slot per address (one port), keeps
// them while they stay, and empties slots as the answer shrinks.
func TestTemplateHostName(t *testing.T) {
	e1 := testbed.StartEcho(t)
	port := e1.Addr().Port()
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		testbed.StartEchoOn(t, netip.AddrPortFrom(netip.MustParseAddr(ip), port).String())
	}
	at := func(ip string) string { return fmt.Sprintf("%s:%d/100", ip, port) }
	z := testbed.StartZone(t)
	z.Set(t, "web.internal", "web.internal. 0 IN A 127.0.0.3", "web.internal. 0 IN A 127.0.0.1", "web.internal. 0 IN A 127.0.0.2")
	p, addr := startProxy(t, templateConfig("epoll", z, "web.internal", port, 2))
	waitSlots(t, p, at("127.0.0.1")+" "+at("127.0.0.2"))
	z.Set(t, "web.internal", "web.internal. 0 IN A 127.0.0.3", "web.internal. 0 IN A 127.0.0.2")
	waitSlots(t, p, at("127.0.0.3")+" "+at("127.0.0.2"))
	z.Set(t, "web.internal", "web.internal. 0 IN A 127.0.0.2")
	waitSlots(t, p, "- "+at("127.0.0.2"))
	if err := echoOnce(addr, rand.New(rand.NewPCG(2, 2))); err != nil {
		t.Fatal(err)
	}
	z.Set(t, "web.internal")
	waitSlots(t, p, "- -")
}

// init_addr last starts a named server at the address the state file
// saved, though the nameserver is silent; without a saved address it
// goes on to the next method.
func TestInitAddrLast(t *testing.T) {
	z := testbed.StartZone(t)
	z.Silence("db.internal")
	cfg := namedConfig("epoll", z, "db.internal", 5432, session.InitLast)
	cfg.Backends[0].Servers[0].InitAddr = []string{session.InitLast, "192.0.2.9"}
	p, err := session.New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	p.Restore([]session.SavedServer{{Backend: "app", Server: "s1", Addr: netip.MustParseAddrPort("192.0.2.44:5432"), Weight: 100, InitWeight: 100}})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(0) })
	if s := server0(p); s.Addr != "192.0.2.44:5432" || s.Resolution.Maint {
		t.Fatalf("init_addr last with a saved address: %+v", s)
	}
	p2, _ := startProxy(t, cfg) // nothing saved: the next method
	if s := server0(p2); s.Addr != "192.0.2.9:5432" {
		t.Fatalf("init_addr last,192.0.2.9 with nothing saved: %+v", s)
	}
}
