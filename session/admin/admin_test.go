package admin

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// twoServers runs a proxy over "who served" backends a and b, and an
// admin socket; it returns the proxy, its address and the socket path.
func twoServers(t *testing.T) (*session.Proxy, netip.AddrPort, string) {
	p := twoServerProxy(t)
	_, path := listen(t, p, nil)
	return p, p.Addrs("web")[0], path
}

// twoServerProxy runs a proxy over "who served" backends a and b.
func twoServerProxy(t *testing.T) *session.Proxy { return twoServerProxyWith(t, nil) }

// twoServerProxyWith is twoServerProxy with cfg changed by mut first.
func twoServerProxyWith(t *testing.T, mut func(cfg *session.Config)) *session.Proxy {
	var servers []*session.Server
	for _, n := range []string{"a", "b"} {
		servers = append(servers, &session.Server{Name: n, Address: testbed.StartNamed(t, n).Addr(), Weight: 100})
	}
	be := &session.Backend{Name: "app", Balance: "roundrobin", TimeoutConnect: time.Second,
		TimeoutServer: 10 * time.Second, Retries: 1, Servers: servers}
	fe := &session.Frontend{Name: "web", Binds: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		BackendName: "app", Backend: be, TimeoutClient: 10 * time.Second, TCPNoDelay: true}
	cfg := &session.Config{Global: session.Global{Engine: "uring", Workers: 2, MaxConn: 100, MaxAccept: 16,
		BufSize: 16 << 10, Grace: time.Second}, Frontends: []*session.Frontend{fe}, Backends: []*session.Backend{be}}
	if mut != nil {
		mut(cfg)
	}
	return startProxy(t, cfg)
}

// startProxy runs cfg, quietly, until the test ends.
func startProxy(t *testing.T, cfg *session.Config) *session.Proxy {
	t.Helper()
	p, err := session.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(time.Second) })
	return p
}

// listen opens an admin socket on p, logging to log (nil: nowhere), and
// returns it and its path.
func listen(t *testing.T, p *session.Proxy, log *slog.Logger) (*Server, string) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	path := filepath.Join(t.TempDir(), "admin.sock")
	s, err := Listen(path, 0o600, Target{Proxy: func() *session.Proxy { return p }, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, path
}

func ctl(t *testing.T, path, cmd string) string {
	t.Helper()
	out, err := Send(path, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// who opens a session and returns the server's name and the open conn.
func who(t *testing.T, addr netip.AddrPort) (string, net.Conn) {
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line), c
}

func count(t *testing.T, addr netip.AddrPort, n int) map[string]int {
	got := map[string]int{}
	for i := 0; i < n; i++ {
		name, c := who(t, addr)
		c.Close()
		got[name]++
	}
	return got
}

// heldOn opens sessions until one lands on server name, and keeps it.
func heldOn(t *testing.T, addr netip.AddrPort, name string) net.Conn {
	for {
		got, c := who(t, addr)
		if got == name {
			t.Cleanup(func() { c.Close() })
			return c
		}
		c.Close()
	}
}

// stillOpen says whether c's session goes on: a write goes through and
// a read waits instead of meeting the end.
func stillOpen(c net.Conn) bool {
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	_, err := c.Read(make([]byte, 1))
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// stateLine is server s's line of show servers state, split in fields.
func stateLine(t *testing.T, path, s string) []string {
	t.Helper()
	for line := range strings.Lines(ctl(t, path, "show servers state")) {
		if f := strings.Fields(line); len(f) == 25 && f[1] == "app" && f[3] == s {
			return f
		}
	}
	t.Fatalf("show servers state has no line for app/%s", s)
	return nil
}

// Drain and maint, as HAProxy's set server state: no new session reaches
// the server, the one it has goes on; maint also counts it DOWN. Ready
// brings it back. disable/enable server are maint and ready.
func TestSetServerState(t *testing.T) {
	_, addr, path := twoServers(t)
	held := heldOn(t, addr, "a")
	for _, c := range []struct {
		set, opState, admState string
	}{
		{"set server app/a state drain", "2", "8"},
		{"set server app/a state maint", "0", "1"},
		{"disable server app/a", "0", "1"},
	} {
		if out := ctl(t, path, c.set); out != "" {
			t.Fatalf("%s: %q", c.set, out)
		}
		if got := count(t, addr, 10); got["a"] != 0 {
			t.Fatalf("after %s new sessions reached a: %v", c.set, got)
		}
		if !stillOpen(held) {
			t.Fatalf("after %s the session a had is gone", c.set)
		}
		if f := stateLine(t, path, "a"); f[5] != c.opState || f[6] != c.admState {
			t.Errorf("after %s: srv_op_state %s srv_admin_state %s, want %s %s", c.set, f[5], f[6], c.opState, c.admState)
		}
		for _, back := range []string{"set server app/a state ready", "enable server app/a"} {
			ctl(t, path, back)
			if got := count(t, addr, 10); got["a"] == 0 {
				t.Fatalf("after %s a got nothing: %v", back, got)
			}
			if f := stateLine(t, path, "a"); f[5] != "2" || f[6] != "0" {
				t.Errorf("after %s: srv_op_state %s srv_admin_state %s, want 2 0", back, f[5], f[6])
			}
			ctl(t, path, c.set)
		}
		ctl(t, path, "set server app/a state ready")
	}
	for cmd, want := range map[string]string{
		"set server app/a state busy":   "error: 'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n",
		"set server app/a":              "error: 'set server <srv>' supports 'state', 'weight' and 'addr' here.\n",
		"set server app/zz state maint": "error: No such server.\n",
		"set server nope/a state maint": "error: No such backend.\n",
		"set server a state maint":      "error: Require 'backend/server'.\n",
	} {
		if out := ctl(t, path, cmd); out != want {
			t.Errorf("%q answered %q, want %q", cmd, out, want)
		}
	}
}

func TestSetWeightChangesShare(t *testing.T) {
	_, addr, path := twoServers(t)
	if out := ctl(t, path, "set weight app/a 3"); out != "" {
		t.Fatalf("set weight: %q", out)
	}
	ctl(t, path, "set server app/b weight 1")
	if got := count(t, addr, 40); got["a"] != 30 || got["b"] != 10 {
		t.Fatalf("weights 3:1 over 40 sessions: %v", got)
	}
	if out := ctl(t, path, "get weight app/a"); out != "3 (initial 100)\n" {
		t.Errorf("get weight: %q", out)
	}
	ctl(t, path, "set weight app/a 50%")
	ctl(t, path, "set weight app/b 25%")
	if out := ctl(t, path, "get weight app/a") + ctl(t, path, "get weight app/b"); out != "50 (initial 100)\n25 (initial 100)\n" {
		t.Errorf("get weight after 50%% and 25%%: %q", out)
	}
	if got := count(t, addr, 30); got["a"] != 20 || got["b"] != 10 {
		t.Fatalf("weights 2:1 over 30 sessions: %v", got)
	}
	for cmd, want := range map[string]string{
		"set weight app/a 900":  "error: Absolute weight can only be between 0 and 256 inclusive.\n",
		"set weight app/a -1%":  "error: Relative weight must be positive.\n",
		"set weight app/a":      "error: Require <weight> or <weight%>.\n",
		"set weight app/a x":    `error: weight "x": want a number from 0 to 256, or a percentage such as 50%` + "\n",
		"get weight app/zz":     "error: No such server.\n",
		"get weight zz/a":       "error: No such backend.\n",
		"set weight app/a 900%": "", // capped at 256, as HAProxy's
	} {
		if out := ctl(t, path, cmd); out != want {
			t.Errorf("%q answered %q, want %q", cmd, out, want)
		}
	}
	if out := ctl(t, path, "get weight app/a"); out != "256 (initial 100)\n" {
		t.Errorf("get weight after 900%%: %q", out)
	}
}

func TestParseWeight(t *testing.T) {
	for _, c := range []struct {
		arg     string
		initial int
		want    int
	}{{"0", 5, 0}, {"256", 5, 256}, {"100%", 5, 5}, {"50%", 5, 2}, {"0%", 5, 0}, {"200%", 200, 256}, {"99999999%", 1, 256}} {
		if got, err := parseWeight(c.arg, c.initial); got != c.want || err != nil {
			t.Errorf("parseWeight(%q, %d) = %d, %v; want %d", c.arg, c.initial, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "%", "257", "-1", "1.5", "5%%", "0x10", " 5"} {
		if _, err := parseWeight(bad, 5); err == nil {
			t.Errorf("parseWeight(%q) accepted", bad)
		}
	}
}

func TestShowSessAndShutdownSessions(t *testing.T) {
	_, addr, path := twoServers(t)
	name, c := who(t, addr)
	defer c.Close()
	sessLine := regexp.MustCompile(`^0x[0-9a-f]+: proto=tcpv4 src=127\.0\.0\.1:\d+ fe=web be=app srv=` + name + ` ts=00 epoch=0 age=\d+s state=forwarding worker=\d+ bytes_in=\d+ bytes_out=\d+\n$`)
	if out := ctl(t, path, "show sess"); !sessLine.MatchString(out) {
		t.Fatalf("show sess: %q", out)
	}
	if out := ctl(t, path, "shutdown sessions server app/"+name); out != "" {
		t.Fatalf("shutdown sessions: %q", out)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the session is still open after shutdown sessions")
		}
	}
}

// shutdown session ID ends that session alone; its id, once used, names
// nothing, even after its slot serves another session.
func TestShutdownSessionByID(t *testing.T) {
	_, addr, path := twoServers(t)
	_, c1 := who(t, addr)
	defer c1.Close()
	_, c2 := who(t, addr)
	defer c2.Close()
	var ids []string
	for line := range strings.Lines(ctl(t, path, "show sess")) {
		id, _, _ := strings.Cut(line, ":")
		ids = append(ids, id)
	}
	if len(ids) != 2 {
		t.Fatalf("show sess lists %d sessions, want 2", len(ids))
	}
	if out := ctl(t, path, "show sess "+ids[0]); !strings.HasPrefix(out, ids[0]+": ") || strings.Count(out, "\n") != 1 {
		t.Errorf("show sess %s: %q", ids[0], out)
	}
	if out := ctl(t, path, "shutdown session "+ids[0]); out != "" {
		t.Fatalf("shutdown session: %q", out)
	}
	open := 0
	for _, c := range []net.Conn{c1, c2} {
		if stillOpen(c) {
			open++
		}
	}
	if open != 1 {
		t.Fatalf("%d of the two sessions open after shutdown session, want 1", open)
	}
	if out := ctl(t, path, "show sess"); strings.Count(out, "\n") != 1 || strings.HasPrefix(out, ids[0]) {
		t.Errorf("show sess after shutdown session %s: %q", ids[0], out)
	}
	for i := 0; i < 4; i++ { // reuse the freed slots
		_, c := who(t, addr)
		c.Close()
	}
	if out := ctl(t, path, "shutdown session "+ids[0]); out != "error: No such session (use 'show sess').\n" {
		t.Errorf("shutdown session of an ended session: %q", out)
	}
}

// Every answer on the socket ends with an empty line, as HAProxy's CLI
// frames them; Send (ctl) gives the answer without it.
func TestAnswersEndWithAnEmptyLine(t *testing.T) {
	_, _, path := twoServers(t)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "set weight app/a 5; get weight app/a; get weight app/zz; show servers state\n")
	c.(*net.UnixConn).CloseWrite()
	raw, _ := io.ReadAll(c)
	answers := strings.Split(string(raw), "\n\n")
	if len(answers) != 4 || answers[3] != "" || !strings.HasPrefix(string(raw), "\n") { // the first answer is empty
		t.Fatalf("answers %q, want 4 each ending with an empty line", raw)
	}
	if answers[0] != "\n5 (initial 100)" || answers[1] != "error: No such server." || !strings.HasPrefix(answers[2], "1\n# be_id") {
		t.Errorf("answers %q", answers)
	}
	if got := ctl(t, path, "get weight app/a"); got != "5 (initial 100)\n" {
		t.Errorf("Send gave %q", got)
	}
}

func TestHelpInfoAndErrors(t *testing.T) {
	_, _, path := twoServers(t)
	for cmd, want := range map[string]string{
		"help":                     "show sess",
		"show info":                "Name: ringproxy\n",
		"show info human":          "engine: uring",
		"show stat":                "app,a,0,0,0,0,,0,0,0,,,,0,,0,0,no check,100,",
		"show stat human":          "app,a,UP,100",
		"frobnicate":               `error: unknown command "frobnicate"`,
		"reload":                   "error: this process has no config file to reload",
		"disable server nobackend": "error: Require 'backend/server'.\n",
		"disable server app/zz":    "error: No such server.\n",
		"disable frontend nope":    "error: No such frontend.\n",
		"disable frontend":         "error: A frontend name is expected.\n",
		"shutdown session":         "error: Session pointer expected (use 'show sess').\n",
		"shutdown session 0x1":     "error: No such session (use 'show sess').\n",
		"shutdown session 12":      "error: No such session (use 'show sess').\n",
		"show sess 0x1":            "error: Session not found.\n",
		"show servers state nope":  "error: Can't find backend.\n",
	} {
		if out := ctl(t, path, cmd); !strings.Contains(out, want) {
			t.Errorf("%q answered %q, want it to contain %q", cmd, out, want)
		}
	}
}

// Commands separated by ';' are answered in turn, each as it would be
// alone.
func TestSeveralCommandsOnALine(t *testing.T) {
	_, _, path := twoServers(t)
	answers := []string{ctl(t, path, "disable server app/a"), ctl(t, path, "show servers state"), ctl(t, path, "enable server app/a")}
	want := strings.Join(answers, "\n") // each answer ends with an empty line
	if got := ctl(t, path, "disable server app/a; show servers state ;enable server app/a;"); got != want {
		t.Errorf("answered %q, want %q", got, want)
	}
	if !strings.Contains(answers[1], " a 127.0.0.1 0 1 ") {
		t.Errorf("the server was not in maint between the two: %q", answers[1])
	}
}

func TestSocketModeAndStaleFile(t *testing.T) {
	_, _, path := twoServers(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	// A live socket is not taken over.
	if _, err := Listen(path, 0o600, Target{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
	// A stale one (its process gone) is replaced.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s, err := Listen(stale, 0o640, Target{})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s.Close()
}

// reload runs the process's reload and answers with its outcome; an
// error of several lines stays one answer.
func TestReloadCommand(t *testing.T) {
	p, _, _ := twoServers(t)
	var outcome error
	calls := 0
	path := filepath.Join(t.TempDir(), "admin.sock")
	s, err := Listen(path, 0o600, Target{
		Proxy:  func() *session.Proxy { return p },
		Reload: func() error { calls++; return outcome },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := ctl(t, path, "reload"); got != "reloaded\n" || calls != 1 {
		t.Errorf("reload: %q after %d calls", got, calls)
	}
	outcome = errors.New("t.toml:3: backend.name: want a string\nt.toml:9: unknown key x")
	if got := ctl(t, path, "reload"); got != "error: t.toml:3: backend.name: want a string\n  t.toml:9: unknown key x\n" || calls != 2 {
		t.Errorf("failed reload: %q after %d calls", got, calls)
	}
}
