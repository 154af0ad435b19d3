package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ringproxy/cmd/ringproxy/config"
	"ringproxy/session"
	"ringproxy/session/testbed"
)

// runCLI runs the app with args and returns stdout, stderr and the error.
func runCLI(args ...string) (string, string, error) {
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"ringproxy"}, args...))
	return out.String(), errOut.String(), err
}

func TestCheckGoodConfigPrintsSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "good.toml")
	os.WriteFile(path, config.Default(), 0o644)
	out, _, err := runCLI("check", "-c", path)
	if err != nil {
		t.Fatalf("check of the default config: %v", err)
	}
	for _, want := range []string{"frontend web: bind 127.0.0.1:8080 -> backend demo", "server demo2 127.0.0.1:8082", "OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckBadConfigNamesFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte("[global]\nmaxconn = 10\n\n[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:80\"]\nbackend = \"app\"\ntimeout_client = \"3x\"\n"), 0o644)
	_, errOut, err := runCLI("check", "-c", path)
	if err == nil {
		t.Fatal("check of a bad config succeeded")
	}
	if want := path + ":8: frontend[0] (web).timeout_client: bad duration"; !strings.Contains(errOut, want) {
		t.Fatalf("stderr %q lacks %q", errOut, want)
	}
}

func TestVersionPrintsKernelAndFeatures(t *testing.T) {
	out, _, err := runCLI("version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ringproxy", "go1.", "kernel ", "multishot accept", "provided buffer rings", "defer-taskrun", "engine uring  available", "engine epoll  available"} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestCLIRefusesWhatItCannotDo(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"` + "\n" + usageLine},
		{[]string{"run", "--workers", "-1"}, "--workers -1: want 0 (one per CPU) or more"},
	} {
		if _, _, err := runCLI(c.args...); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	out, _, _ := runCLI("run", "--help")
	if !strings.Contains(out, "(default: global.workers of the config)") {
		t.Errorf("run --help does not show --workers' real default:\n%s", out)
	}
}

func TestVersionIsStamped(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3-4-gabcdef0"
	if out, _, _ := runCLI("version"); !strings.HasPrefix(out, "ringproxy v1.2.3-4-gabcdef0 (go1.") {
		t.Errorf("version with a stamp: %q", out)
	}
	version = ""
	if v := buildVersion(); v != "dev" && !strings.HasPrefix(v, "dev-") {
		t.Errorf("unstamped version %q, want dev or dev-REVISION", v)
	}
}

func TestRunRejectsUnknownEngine(t *testing.T) {
	if _, _, err := runCLI("run", "--engine", "kqueue"); err == nil || !strings.Contains(err.Error(), "unknown engine") {
		t.Fatalf("run --engine kqueue: %v", err)
	}
}

// freePort returns a loopback address nothing listens on right now.
func freePort(t *testing.T) netip.AddrPort { return testbed.FreeAddrs(t, 1)[0] }

// demoConfig is the embedded default with every address moved to a free
// port, so the test does not need 8080-8082.
func demoConfig(t *testing.T) *session.Config {
	cfg, err := config.Parse("default", config.Default())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Frontends[0].Binds = []netip.AddrPort{freePort(t)}
	for _, s := range cfg.Backends[0].Servers {
		s.Address = freePort(t)
	}
	cfg.Global.Grace = 2 * time.Second
	return cfg
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestDemoTwoBackendsTakeTurns(t *testing.T) {
	cfg := demoConfig(t)
	demoBackends(t, cfg)
	p, done := startServe(t, cfg)
	url := fmt.Sprintf("http://%s/", p.Addrs("web")[0])
	var answers []string
	for i := 0; i < 2; i++ {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers = append(answers, string(b))
	}
	if !strings.Contains(answers[0], "hello from demo/") || answers[0] == answers[1] {
		t.Fatalf("two requests, answers %q: want two different demo backends", answers)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
}

// SIGTERM stops accepting, lets a live session run through the grace
// period, then closes it, and serve returns nil (exit 0).
func TestSIGTERMDrainsForGraceThenExits(t *testing.T) {
	cfg := demoConfig(t)
	echo, err := net.Listen("tcp", cfg.Backends[0].Servers[0].Address.String())
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	cfg.Backends[0].Servers = cfg.Backends[0].Servers[:1]
	cfg.Global.Grace = 500 * time.Millisecond
	p, done := startServe(t, cfg)
	addr := p.Addrs("web")[0].String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := []byte{'a'}
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Fatal("new connection accepted after SIGTERM")
	}
	c.Write([]byte{'b'})
	if _, err := io.ReadFull(c, b); err != nil || b[0] != 'b' {
		t.Fatalf("live session during the grace period: %q %v", b, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if took := time.Since(start); took < 400*time.Millisecond || took > 3*time.Second {
		t.Fatalf("exit %v after SIGTERM with a 500ms grace", took)
	}
	expectClosed(t, c)
}

// expectClosed fails unless the peer of c has closed it (EOF or reset).
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("session still open after the proxy exited")
	}
}

func TestAdminStatsListener(t *testing.T) {
	cfg := demoConfig(t)
	cfg.Admin.Stats = freePort(t)
	demoBackends(t, cfg)
	_, done := startServe(t, cfg)
	resp, err := http.Get("http://" + cfg.Admin.Stats.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `ringproxy_frontend_sessions_total{frontend="web"}`) {
		t.Fatalf("/metrics: %s\n%s", resp.Status, body)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCtlTalksToTheAdminSocket(t *testing.T) {
	cfg := demoConfig(t)
	cfg.Admin.Socket = filepath.Join(t.TempDir(), "admin.sock")
	cfg.Admin.SocketMode = 0o600
	demoBackends(t, cfg)
	_, done := startServe(t, cfg)
	out, _, err := runCLI("ctl", "--socket", cfg.Admin.Socket, "show", "servers", "state")
	if err != nil || !strings.Contains(out, " demo 1 demo1 127.0.0.1 2 0 ") {
		t.Fatalf("ctl show servers state: %v\n%s", err, out)
	}
	if _, _, err := runCLI("ctl", "--socket", cfg.Admin.Socket, "disable", "server", "demo/nope"); err == nil {
		t.Fatal("ctl with an error answer exited 0")
	}
	// help goes to the socket, whose list of commands comes back.
	if out, _, err := runCLI("ctl", "--socket", cfg.Admin.Socket, "help"); err != nil || !strings.Contains(out, "show servers state") {
		t.Fatalf("ctl help: %v\n%s", err, out)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.Admin.Socket); !os.IsNotExist(err) {
		t.Fatalf("admin socket left behind after exit: %v", err)
	}
}

// Every example config in deploy/examples passes check.
func TestDeployExamplesPassCheck(t *testing.T) {
	files, err := filepath.Glob("../../deploy/examples/*.toml")
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		if out, errOut, err := runCLI("check", "-c", f); err != nil || !strings.Contains(out, "OK") {
			t.Errorf("%s: %v\n%s%s", f, err, out, errOut)
		}
	}
}

// Under systemd (Type=notify) serve says READY=1 once it accepts and
// STOPPING=1 when a signal starts the drain.
func TestServeNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	cfg := demoConfig(t)
	done := make(chan error, 1)
	go func() { done <- serve(cfg, nil, quietLog(), nil) }()
	read := func() string {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 256)
		n, err := conn.Read(b)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(b[:n])
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if got := read(); got != "STOPPING=1" {
		t.Fatalf("on SIGTERM %q, want STOPPING=1", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// startServe runs serve(cfg) in the background and returns the running
// proxy and the channel serve's result arrives on.
func startServe(t *testing.T, cfg *session.Config) (*session.Proxy, <-chan error) {
	t.Helper()
	started := make(chan *session.Proxy, 1)
	done := make(chan error, 1)
	go func() { done <- serve(cfg, nil, quietLog(), func(p *session.Proxy) { started <- p }) }()
	select {
	case p := <-started:
		return p, done
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return nil, nil
}

// demoBackends starts the demo HTTP backends of cfg for the test.
func demoBackends(t *testing.T, cfg *session.Config) {
	t.Helper()
	stop, err := startDemoBackends(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}
