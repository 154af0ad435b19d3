package admin

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// haproxyStateLines reads a show servers state answer captured from
// HAProxy 2.6.12 (testdata): its two header lines and its server lines.
func haproxyStateLines(t *testing.T, name string) (header string, lines [][]string) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.SplitAfterN(string(b), "\n", 3)
	for line := range strings.Lines(all[2]) {
		lines = append(lines, strings.Fields(line))
	}
	return all[0] + all[1], lines
}

// serverState returns show servers state's header and its lines by
// backend/server.
func serverState(t *testing.T, path string) (string, map[string][]string) {
	t.Helper()
	out := ctl(t, path, "show servers state")
	parts := strings.SplitAfterN(out, "\n", 3)
	if len(parts) < 3 {
		t.Fatalf("show servers state: %q", out)
	}
	lines := map[string][]string{}
	for line := range strings.Lines(parts[2]) {
		f := strings.Fields(line)
		if len(f) != 25 {
			t.Fatalf("line of %d fields, want 25: %q", len(f), line)
		}
		lines[f[1]+"/"+f[3]] = f
	}
	return parts[0] + parts[1], lines
}

// Field by field as HAProxy's own answer: the same header; a checked UP
// server (L4OK, passed, health rise+fall-1, check configured and
// enabled), a checked DOWN one (L4CON, failed, 0), an unchecked one
// (INI, unknown, health 2, no check state); in maint (op 0, admin 1,
// health 0, checks paused: 14) with its last check's status kept.
func TestShowServersStateAsHAProxy(t *testing.T) {
	p, _, path := statProxy(t)
	wantHeader, hap := haproxyStateLines(t, "haproxy-2.6.12-show-servers-state.txt")
	_, hapMaint := haproxyStateLines(t, "haproxy-2.6.12-show-servers-state-maint.txt")
	var lines map[string][]string
	testbed.WaitFor(t, 5*time.Second, func() bool {
		_, lines = serverState(t, path)
		return lines["app/a"][10] == "6" && lines["app/a"][12] == "3" && lines["app/b"][5] == "0"
	}, "a checked UP and b checked DOWN")
	header, _ := serverState(t, path)
	if header != wantHeader {
		t.Errorf("header\n%q, want HAProxy's\n%q", header, wantHeader)
	}
	port := func(s string) string { return strings.Split(s, ":")[1] }
	want := map[string]string{
		"app/a":    "2 app 1 a 127.0.0.1 2 0 10 10 * 6 3 3 6 0 0 0 - " + port(p.Snapshot().Backends[0].Servers[0].Addr) + " - 0 0 - - 0",
		"app/b":    "2 app 2 b 127.0.0.1 0 0 20 20 * 8 2 0 6 0 0 0 - " + port(p.Snapshot().Backends[0].Servers[1].Addr) + " - 0 0 - - 0",
		"spare/s1": "3 spare 1 s1 127.0.0.1 2 0 1 1 * 1 0 2 0 0 0 0 - " + port(p.Snapshot().Backends[1].Servers[0].Addr) + " - 0 0 - - 0",
	}
	same := func(got []string, want string) bool {
		w := strings.Fields(want)
		for i := range w {
			if w[i] != "*" && got[i] != w[i] {
				return false
			}
		}
		return true
	}
	for name, w := range want {
		if !same(lines[name], w) {
			t.Errorf("%s: %q\nwant %q", name, strings.Join(lines[name], " "), w)
		}
	}
	// HAProxy's lines for the same kinds of server (s1 UP, s2 DOWN, s3
	// unchecked) agree on every field that does not name the setup.
	for i, ours := range [][]string{lines["app/a"], lines["app/b"], lines["spare/s1"]} {
		for _, f := range []int{5, 6, 10, 11, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24} {
			if ours[f] != hap[i][f] {
				t.Errorf("%s field %d is %s, HAProxy's %s", ours[3], f, ours[f], hap[i][f])
			}
		}
	}

	if err := p.SetServerState("app", "a", session.AdminMaint); err != nil {
		t.Fatal(err)
	}
	_, lines = serverState(t, path)
	if w := "2 app 1 a 127.0.0.1 0 1 10 10 * 6 3 0 14 0 0 0 - * - 0 0 - - 0"; !same(lines["app/a"], w) {
		t.Errorf("in maint: %q, want %q", strings.Join(lines["app/a"], " "), w)
	}
	for _, f := range []int{5, 6, 10, 11, 12, 13} {
		if lines["app/a"][f] != hapMaint[0][f] {
			t.Errorf("in maint, field %d is %s, HAProxy's %s", f, lines["app/a"][f], hapMaint[0][f])
		}
	}
	// Leaving maint: UP at once, health rise (one failure from DOWN).
	if err := p.SetServerState("app", "a", session.AdminReady); err != nil {
		t.Fatal(err)
	}
	_, lines = serverState(t, path)
	if f := lines["app/a"]; f[5] != "2" || f[6] != "0" || f[13] != "6" || f[12] != "2" && f[12] != "3" {
		t.Errorf("ready again: %q, want UP, health 2 until the next check passes", strings.Join(f, " "))
	}
	if out := ctl(t, path, "show servers state spare"); strings.Count(out, "\n") != 4 || strings.Contains(out, " app ") {
		t.Errorf("show servers state spare:\n%s", out)
	}
}

// srv_time_since_last_change counts whole seconds since the server last
// started or stopped taking sessions.
func TestServerStateSinceLastChange(t *testing.T) {
	now := time.Now()
	sv := session.ServerStats{Name: "s1", Addr: "10.0.0.1:80", Up: true, Admin: "ready", Weight: 1, InitWeight: 1, LastChange: now.Add(-12500 * time.Millisecond)}
	if f := strings.Fields(serverStateLine("be", 3, 1, sv, now)); f[9] != "12" {
		t.Errorf("srv_time_since_last_change %s, want 12", f[9])
	}
}

// srv_check_port and srv_check_addr: where the config sends the checks,
// 0 and "-" when to the server itself, as HAProxy's.
func TestServerStateCheckEndpoint(t *testing.T) {
	now := time.Now()
	sv := session.ServerStats{Name: "pg1", Addr: "10.0.0.1:5432", Up: true, Admin: "ready", Weight: 1, InitWeight: 1, LastChange: now,
		Check: &session.CheckStats{Kind: "http", Rise: 2, Fall: 3, Port: 8008, Address: netip.MustParseAddr("10.0.9.1")}}
	if f := strings.Fields(serverStateLine("pg", 2, 1, sv, now)); f[21] != "8008" || f[22] != "10.0.9.1" {
		t.Errorf("srv_check_port %s srv_check_addr %s, want 8008 10.0.9.1", f[21], f[22])
	}
	sv.Check.Port, sv.Check.Address = 0, netip.Addr{}
	if f := strings.Fields(serverStateLine("pg", 2, 1, sv, now)); f[21] != "0" || f[22] != "-" {
		t.Errorf("srv_check_port %s srv_check_addr %s, want 0 -", f[21], f[22])
	}
}
