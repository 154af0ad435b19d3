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
func twoServerProxy(t *testing.T) *session.Proxy {
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

// Disable drains a server: no new session reaches it, the one it has goes
// on; enable brings it back.
func TestDisableServerDrains(t *testing.T) {
	_, addr, path := twoServers(t)
	var held net.Conn
	for held == nil {
		if name, c := who(t, addr); name == "a" {
			held = c
		} else {
			c.Close()
		}
	}
	defer held.Close()
	if out := ctl(t, path, "disable server app/a"); out != "done\n" {
		t.Fatalf("disable: %q", out)
	}
	if got := count(t, addr, 10); got["a"] != 0 {
		t.Fatalf("a disabled, yet new sessions reached it: %v", got)
	}
	if _, err := held.Write([]byte("still here")); err != nil {
		t.Fatalf("the session a had before the drain: %v", err)
	}
	if out := ctl(t, path, "show servers state"); !strings.Contains(out, "app a ") || !strings.Contains(out, " MAINT ") {
		t.Fatalf("show servers state:\n%s", out)
	}
	ctl(t, path, "enable server app/a")
	if got := count(t, addr, 10); got["a"] == 0 {
		t.Fatalf("a enabled again but got nothing: %v", got)
	}
}

func TestSetWeightChangesShare(t *testing.T) {
	_, addr, path := twoServers(t)
	if out := ctl(t, path, "set weight app/a 3"); out != "done\n" {
		t.Fatalf("set weight: %q", out)
	}
	ctl(t, path, "set weight app/b 1")
	if got := count(t, addr, 40); got["a"] != 30 || got["b"] != 10 {
		t.Fatalf("weights 3:1 over 40 sessions: %v", got)
	}
	if out := ctl(t, path, "set weight app/a 900"); !strings.HasPrefix(out, "error:") {
		t.Fatalf("weight 900 accepted: %q", out)
	}
}

func TestShowSessAndShutdownSessions(t *testing.T) {
	_, addr, path := twoServers(t)
	name, c := who(t, addr)
	defer c.Close()
	if out := ctl(t, path, "show sess"); !strings.Contains(out, "web app/"+name+" forwarding") {
		t.Fatalf("show sess:\n%s", out)
	}
	if out := ctl(t, path, "shutdown sessions server app/"+name); out != "1 sessions closed\n" {
		t.Fatalf("shutdown sessions: %q", out)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the session is still open after shutdown sessions")
		}
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
		"disable server nobackend": "error: want BACKEND/SERVER",
		"disable server app/zz":    `error: backend app has no server "zz"`,
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
	want := ctl(t, path, "disable server app/a") + ctl(t, path, "show servers state") + ctl(t, path, "enable server app/a")
	if got := ctl(t, path, "disable server app/a; show servers state ;enable server app/a;"); got != want {
		t.Errorf("answered %q, want %q", got, want)
	}
	if !strings.Contains(want, "MAINT") {
		t.Errorf("the server was not in MAINT between the two: %q", want)
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
