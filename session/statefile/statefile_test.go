package statefile

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ringproxy/session"
)

// line is a version 1 line for backend app, with fields replaced by
// what set gives (index → value).
func line(server string, set map[int]string) string {
	f := strings.Fields("3 app 1 " + server + " 127.0.0.1 2 0 100 100 12 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0")
	for i, v := range set {
		f[i] = v
	}
	return strings.Join(f, " ") + "\n"
}

const header = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"

func parse(t *testing.T, text string) (*File, error) {
	t.Helper()
	return Parse("state", strings.NewReader(text))
}

// What HAProxy 2.6.12 wrote (session/admin's testdata) reads as HAProxy
// reads it: s1 forced into maint with a runtime weight of 3 over the
// config's 1, s2 DOWN, s3 UP; addresses with their ports.
func TestParseHAProxyFile(t *testing.T) {
	fh, err := os.Open("../admin/testdata/haproxy-2.6.12-show-servers-state-maint.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, err := Parse("haproxy", fh)
	if err != nil {
		t.Fatal(err)
	}
	want := []session.SavedServer{
		{Backend: "be1", Server: "s1", Admin: session.AdminMaint, Weight: 3, InitWeight: 1, Down: true, Addr: netip.MustParseAddrPort("127.0.0.1:28082")},
		{Backend: "be1", Server: "s2", Weight: 1, InitWeight: 1, Down: true, Addr: netip.MustParseAddrPort("127.0.0.1:28083")},
		{Backend: "be1", Server: "s3", Weight: 1, InitWeight: 1, Addr: netip.MustParseAddrPort("127.0.0.1:28084")},
	}
	if len(f.Lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(f.Lines), len(want))
	}
	for i, l := range f.Lines {
		if l.Saved != want[i] || l.Num != i+3 {
			t.Errorf("line %d: %+v, want line %d %+v", l.Num, l.Saved, i+3, want[i])
		}
	}
}

// A drained server, blank lines and comments, a line with the optional
// fields left out, tabs between fields, and HAProxy's inherited admin
// bits (masked off as HAProxy does).
func TestParseLines(t *testing.T) {
	text := header + "\n   \n# a comment\n" +
		line("a", map[int]string{fAdminState: "8"}) +
		strings.Join(strings.Fields(line("b", map[int]string{fAdminState: "0x10"}))[:20], "\t") + "\n" +
		line("c", map[int]string{fAdminState: "24", fAddr: "-", fUWeight: "0"})
	_, err := parse(t, text)
	if err == nil {
		t.Fatal("an admin state of \"0x10\" read as a number")
	}
	text = strings.Replace(text, "0x10", "16", 1)
	f, err := parse(t, text)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]session.SavedServer{}
	for _, l := range f.Lines {
		got[l.Saved.Server] = l.Saved
	}
	if got["a"].Admin != session.AdminDrain {
		t.Errorf("a, admin 8 (FDRAIN): %v", got["a"].Admin)
	}
	if got["b"].Admin != session.AdminReady || got["b"].Weight != 100 {
		t.Errorf("b, 20 tab-separated fields, admin 16 (IDRAIN, inherited): %+v", got["b"])
	}
	if c := got["c"]; c.Admin != session.AdminDrain || c.Addr.IsValid() || c.Weight != 0 {
		t.Errorf("c, admin 24 (FDRAIN|IDRAIN), address -, weight 0: %+v", c)
	}
}

// A second line for the same server is ignored, the first wins.
func TestParseDuplicate(t *testing.T) {
	f, err := parse(t, header+line("a", map[int]string{fUWeight: "5"})+line("a", map[int]string{fUWeight: "9"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Lines) != 1 || f.Lines[0].Saved.Weight != 5 || len(f.Duplicates) != 1 || f.Duplicates[0].Num != 4 {
		t.Fatalf("lines %+v, duplicates %+v", f.Lines, f.Duplicates)
	}
}

// A file that cannot be read whole is refused whole, naming its file
// and the line.
func TestParseRefuses(t *testing.T) {
	good := line("a", nil)
	cases := []struct {
		name, text string
		line       int
		msg        string
	}{
		{"no version", "# be_id\n" + good, 1, "want the format version"},
		{"version 2", "2\n" + good, 1, "want the format version"},
		{"version without newline", "1", 1, "cut short"},
		{"torn last line", header + good + good[:30], 4, "cut short"},
		{"too few fields", header + "3 app 1 a 127.0.0.1 2 0 100 100\n", 3, "9 fields"},
		{"too many fields", header + strings.TrimSuffix(good, "\n") + " 0 0\n", 3, "27 fields"},
		{"not a number", header + line("a", map[int]string{fUWeight: "heavy"}), 3, "srv_uweight"},
		{"weight out of range", header + line("a", map[int]string{fUWeight: "257"}), 3, "srv_uweight"},
		{"op state", header + line("a", map[int]string{fOpState: "4"}), 3, "srv_op_state"},
		{"admin maint and drain", header + line("a", map[int]string{fAdminState: "9"}), 3, "srv_admin_state"},
		{"address", header + line("a", map[int]string{fAddr: "example.com"}), 3, "srv_addr"},
		{"port", header + line("a", map[int]string{fPort: "65536"}), 3, "srv_port"},
		{"line too long", header + strings.Repeat("x", 3000) + "\n", 3, "longer than"},
		{"garbage after good lines", header + good + "\x00\xff\xfe garbage\n", 4, "fields"},
	}
	for _, c := range cases {
		_, err := parse(t, c.text)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: %v, want an *Error", c.name, err)
			continue
		}
		if e.File != "state" || e.Line != c.line || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%s: %q, want state:%d: ...%s...", c.name, err, c.line, c.msg)
		}
		if !strings.HasPrefix(err.Error(), "state:") {
			t.Errorf("%s: %q does not begin with the file's name", c.name, err)
		}
	}
}

// A missing or empty file is no state, not an error.
func TestReadMissingOrEmpty(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "none"), filepath.Join(dir, "empty")} {
		if strings.HasSuffix(path, "empty") {
			os.WriteFile(path, nil, 0o644)
		}
		if f, err := Read(path); f != nil || err != nil {
			t.Errorf("%s: %v, %v; want no state, no error", path, f, err)
		}
	}
}

// Lines for a backend or a server the config does not have are ignored,
// each named with its line, as are duplicates.
func TestMatch(t *testing.T) {
	f, err := parse(t, header+line("a", nil)+line("gone", nil)+line("a", nil)+
		strings.Replace(line("a", nil), " app ", " old ", 1))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &session.Config{Backends: []*session.Backend{{Name: "app", Servers: []*session.Server{{Name: "a"}, {Name: "b"}}}}}
	saved, ignored := Match(f, cfg)
	if len(saved) != 1 || saved[0].Server != "a" {
		t.Errorf("saved %+v, want a alone", saved)
	}
	want := []string{
		"line 4, app/gone: no server gone in backend app",
		"line 6, old/a: no backend old in the config",
		"line 5, app/a: names a server an earlier line named",
	}
	if len(ignored) != len(want) {
		t.Fatalf("ignored %v, want %v", ignored, want)
	}
	for i, ig := range ignored {
		if ig.String() != want[i] {
			t.Errorf("ignored %q, want %q", ig, want[i])
		}
	}
}

// A server added at runtime is kept as its add server arguments in a
// comment; a comment that cannot be read that way refuses the file, as
// any other line would.
func TestParseAdded(t *testing.T) {
	f, err := parse(t, header+line("dyn", nil)+AddedPrefix+"app/dyn 127.0.0.1:9000 weight 50 maxconn 9 backup\n# a comment\n")
	if err != nil {
		t.Fatal(err)
	}
	want := session.NewServer{Name: "dyn", Address: netip.MustParseAddrPort("127.0.0.1:9000"), Weight: 50, MaxConn: 9, Backup: true}
	if got := f.Added[[2]string{"app", "dyn"}]; got != want {
		t.Errorf("added server %+v, want %+v", got, want)
	}
	cfg := &session.Config{Backends: []*session.Backend{{Name: "app"}}}
	saved, ignored := Match(f, cfg)
	if len(saved) != 1 || saved[0].Added == nil || *saved[0].Added != want || len(ignored) != 0 {
		t.Errorf("matched %+v, ignored %v; want dyn to be added again", saved, ignored)
	}
	var bad *Error
	if _, err := parse(t, header+AddedPrefix+"app/dyn nowhere\n"); !errors.As(err, &bad) || bad.Line != 3 {
		t.Errorf("a bad added server line: %v, want an error at line 3", err)
	}
}
