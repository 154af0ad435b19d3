package admin

import (
	"fmt"
	"strings"
	"testing"
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
