package admin

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/resolve"
	"ringproxy/session/testbed"
)

// set server addr answers as HAProxy 2.6.12 does (each answer below is
// what its stats socket said to the same command), moves new sessions
// and leaves the held one where it is; show servers state and show stat
// give the new address.
func TestSetServerAddr(t *testing.T) {
	p, addr, path := twoServers(t)
	held := heldOn(t, addr, "a")
	aAddr, _ := p.ServerAddr("app", "a")
	bAddr, _ := p.ServerAddr("app", "b")
	aPort, bPort := aAddr.Port(), bAddr.Port()
	// a moves to b's port: every new session then meets b's server.
	steps := []struct{ cmd, want string }{
		{"set server app/a addr 127.0.0.1", "no need to change the addr by 'stats socket command'\n"},
		{fmt.Sprintf("set server app/a addr 127.0.0.1 port %d", bPort),
			fmt.Sprintf("no need to change the addr, port changed from '%d' to '%d' by 'stats socket command'\n", aPort, bPort)},
		{fmt.Sprintf("set server app/a addr 127.0.0.1 port %d", bPort), "no need to change the addr, no need to change the port by 'stats socket command'\n"},
	}
	for _, s := range steps {
		if out := ctl(t, path, s.cmd); out != s.want {
			t.Fatalf("%q answered %q, want %q", s.cmd, out, s.want)
		}
	}
	if got := count(t, addr, 10); got["b"] != 10 {
		t.Fatalf("after moving a to b's address: %v, want every session on b", got)
	}
	if !stillOpen(held) {
		t.Fatal("the session held on a's old address is gone")
	}
	if f := stateLine(t, path, "a"); f[4] != "127.0.0.1" || f[18] != fmt.Sprint(bPort) {
		t.Errorf("show servers state: srv_addr %s srv_port %s, want 127.0.0.1 %d", f[4], f[18], bPort)
	}
	_, rows := parseStat(t, ctl(t, path, "show stat"))
	if got, want := byName(t, rows, "app", "a")["addr"], fmt.Sprintf("127.0.0.1:%d", bPort); got != want {
		t.Errorf("show stat addr %s, want %s", got, want)
	}
	for _, s := range []struct{ cmd, want string }{
		{"set server app/a addr 127.0.0.2 port 9001", fmt.Sprintf("IP changed from '127.0.0.1' to '127.0.0.2', port changed from '%d' to '9001' by 'stats socket command'\n", bPort)},
		{"set server app/a addr ::1 port 9001", "IP changed from '127.0.0.2' to '::1', no need to change the port by 'stats socket command'\n"},
		{"set server app/a addr ::ffff:127.0.0.3", "IP changed from '::1' to '127.0.0.3' by 'stats socket command'\n"},
		{"set server app/a addr bogus", "error: Invalid addr 'bogus' by 'stats socket command'\n"},
		{"set server app/a addr host.name", "error: Invalid addr 'host.name' by 'stats socket command'\n"},
		{"set server app/a addr", "error: set server <b>/<s> addr requires an address and optionally a port.\n"},
		// HAProxy applies the address and refuses the port.
		{"set server app/a addr 127.0.0.4 port x", "error: IP changed from '127.0.0.3' to '127.0.0.4', problem converting port 'x' to an int by 'stats socket command'\n"},
		{"set server app/a addr 127.0.0.4 port", "error: no need to change the addr, problem converting port '' to an int by 'stats socket command'\n"},
		{"set server app/a addr 127.0.0.4 port 0", "error: no need to change the addr, problem converting port '0' to an int by 'stats socket command'\n"},
		{"set server app/a addr 127.0.0.4 port 70000", "error: no need to change the addr, problem converting port '70000' to an int by 'stats socket command'\n"},
		{"set server app/zz addr 10.0.0.1", "error: No such server.\n"},
		{"set server app addr 10.0.0.1", "error: Require 'backend/server'.\n"},
		{"set server app/a", "error: 'set server <srv>' supports 'state', 'weight' and 'addr' here.\n"},
	} {
		if out := ctl(t, path, s.cmd); out != s.want {
			t.Errorf("%q answered %q, want %q", s.cmd, out, s.want)
		}
	}
	if out := ctl(t, path, "set server app/a addr 127.0.0.4 port +5"); !strings.HasPrefix(out, "error: no need to change the addr, can't change <port> to port map") {
		t.Errorf("a port map: %q", out)
	}
	if got, _ := p.ServerAddr("app", "a"); got.String() != "127.0.0.4:9001" {
		t.Errorf("a is at %v, want 127.0.0.4:9001", got)
	}
}

// A named server out by resolution, as HAProxy 2.6.12 shows one
// (init-addr none, no answer yet): srv_addr "-", srv_admin_state 32
// (SRV_ADMF_RMAINT), its fqdn and port; show stat status "MAINT
// (resolution)" and no addr. set server addr brings it in, as HAProxy.
func TestNamedServerState(t *testing.T) {
	z := testbed.StartZone(t)
	z.Silence("app.internal")
	p := twoServerProxyWith(t, func(cfg *session.Config) {
		s := cfg.Backends[0].Servers[1]
		s.FQDN, s.InitAddr = "app.internal", []string{session.InitNone}
		s.Address = netip.AddrPortFrom(netip.Addr{}, 8080)
		rc := resolve.Defaults()
		rc.Nameservers, rc.Timeout, rc.Retries = []netip.AddrPort{z.Addr()}, 100*time.Millisecond, 0
		cfg.Resolvers = &session.Resolvers{Config: rc}
	})
	_, path := listen(t, p, nil)
	f := stateLine(t, path, "b")
	if got := strings.Join([]string{f[4], f[5], f[6], f[17], f[18]}, " "); got != "- 0 32 app.internal 8080" {
		t.Errorf("show servers state: srv_addr srv_op_state srv_admin_state srv_fqdn srv_port = %q, want %q", got, "- 0 32 app.internal 8080")
	}
	_, rows := parseStat(t, ctl(t, path, "show stat"))
	if r := byName(t, rows, "app", "b"); r["status"] != "MAINT (resolution)" || r["addr"] != "" {
		t.Errorf("show stat: status %q addr %q", r["status"], r["addr"])
	}
	if out := ctl(t, path, "set server app/b addr 127.0.0.1"); out != "IP changed from '-' to '127.0.0.1' by 'stats socket command'\n" {
		t.Errorf("set server addr: %q", out)
	}
	if f := stateLine(t, path, "b"); f[4] != "127.0.0.1" || f[5] != "2" || f[6] != "0" {
		t.Errorf("after set server addr: %v", f[4:7])
	}
}

// An SRV template's slots, as HAProxy 2.6.12 shows them: srv_fqdn the
// target, srvrecord the SRV name; an empty slot "-", port 0, admin 32.
func TestTemplateServersState(t *testing.T) {
	z := testbed.StartZone(t)
	z.Set(t, "_app._tcp.web.internal", "_app._tcp.web.internal. 0 IN SRV 10 256 8081 node1.internal.")
	z.Set(t, "node1.internal", "node1.internal. 0 IN A 127.0.0.9")
	p := twoServerProxyWith(t, func(cfg *session.Config) {
		tpl := &session.Template{Name: "web", Count: 2, FQDN: "_app._tcp.web.internal", SRV: true}
		be := cfg.Backends[0]
		be.Servers = be.Servers[:1]
		for _, n := range []string{"web1", "web2"} {
			be.Servers = append(be.Servers, &session.Server{Name: n, Weight: 100, FQDN: tpl.FQDN, Template: tpl})
		}
		rc := resolve.Defaults()
		rc.Nameservers, rc.Timeout, rc.Retries = []netip.AddrPort{z.Addr()}, 100*time.Millisecond, 0
		rc.TTLMin = 20 * time.Millisecond
		cfg.Resolvers = &session.Resolvers{Config: rc}
	})
	_, path := listen(t, p, nil)
	testbed.WaitFor(t, 5*time.Second, func() bool { return stateLine(t, path, "web1")[4] == "127.0.0.9" }, "web1 filled")
	for name, want := range map[string]string{
		"web1": "127.0.0.9 2 0 1 node1.internal 8081 _app._tcp.web.internal",
		"web2": "- 0 32 100 - 0 _app._tcp.web.internal",
	} {
		f := stateLine(t, path, name)
		if got := strings.Join([]string{f[4], f[5], f[6], f[7], f[17], f[18], f[19]}, " "); got != want {
			t.Errorf("%s: srv_addr op admin uweight srv_fqdn srv_port srvrecord = %q, want %q", name, got, want)
		}
	}
}
