package admin

import (
	"strings"
	"testing"
	"time"

	"ringproxy/session/testbed"
)

// add server and del server answer in HAProxy 2.6.12's words (checked
// against the haproxy installed beside the tests' author), and the
// server they add is in maint, listed by show servers state, until
// enable server.
func TestAddDelServerAnswersAsHAProxy(t *testing.T) {
	_, _, path := statProxy(t)
	extra := testbed.StartEcho(t).Addr().String()
	for _, c := range []struct{ cmd, want string }{
		{"add server spare/n1 " + extra, "New server registered.\n"},
		{"add server spare/n1 " + extra, "error: Already exists a server with the same name in backend.\n"},
		{"add server nope/n1 " + extra, "error: No such backend.\n"},
		{"add server spare " + extra, "error: Require 'backend/server'.\n"},
		{"add server spare/n2", "error: 'server' expects <name> and <addr>[:<port>] as arguments.\n"},
		{"add server spare/n2 " + extra + " weight 300", "error: weight of server n2 is not within 0 and 256 (300)..\n"},
		{"add server spare/n2 " + extra + " bogus 1", "error: unknown keyword 'bogus'.\n"},
		{"add server spare/n2 " + extra + " check", "error: 'check': the backend has no [backend.check], so its servers are not checked.\n"},
		{"add server spare/n3 " + extra + " weight 7 maxconn 3 backup", "New server registered.\n"},
		{"del server spare/s1", "error: Only servers in maintenance mode can be deleted.\n"},
		{"del server spare/zz", "error: No such server.\n"},
		{"del server spare/n3", "Server deleted.\n"},
		{"del server spare/n3", "error: No such server.\n"},
	} {
		if got := ctl(t, path, c.cmd); got != c.want {
			t.Errorf("%s: %q, want %q", c.cmd, got, c.want)
		}
	}
	_, lines := serverState(t, path)
	n1 := lines["spare/n1"]
	// HAProxy 2.6.12: "2 be 2 s2 127.0.0.1 0 1 1 1 0 1 0 0 0 0 0 0 - 10 - 0 0 - - 0"
	// for a server just added: op 0, admin 1 (maint), check status 1,
	// result 0, health 0, check state 0.
	if n1 == nil || n1[5] != "0" || n1[6] != "1" || n1[7] != "100" || strings.Join(n1[10:14], " ") != "1 0 0 0" {
		t.Fatalf("show servers state for the added server: %v, want op 0, admin 1 (maint), weight 100, check 1 0 0 0", n1)
	}
	if _, ok := lines["spare/n3"]; ok {
		t.Error("the deleted server is still in show servers state")
	}
	if got := ctl(t, path, "enable server spare/n1"); got != "" {
		t.Fatalf("enable server: %q", got)
	}
	testbed.WaitFor(t, 2*time.Second, func() bool {
		_, lines = serverState(t, path)
		return lines["spare/n1"][5] == "2"
	}, "the enabled server is UP")
	if !strings.Contains(ctl(t, path, "help"), "add server B/S") {
		t.Error("help does not list add server")
	}
	// The checked backend takes check.
	if got := ctl(t, path, "add server app/c1 "+extra+" check"); got != "New server registered.\n" {
		t.Errorf("add server with check to a checked backend: %q", got)
	}
}
