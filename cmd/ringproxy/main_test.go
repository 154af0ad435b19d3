package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
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

// runMain runs the app with args as main does, errors reported, and
// returns stdout, stderr and the exit code.
func runMain(args ...string) (string, string, int) {
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	code := report(&errOut, app.Run(append([]string{"ringproxy"}, args...)))
	return out.String(), errOut.String(), code
}

// The test binary is the ringproxy binary when mainArgsEnv is set: its
// words (separated by \x1f) are the command line, and mainSyslogEnv, if
// set, is the syslog socket.
const (
	mainArgsEnv   = "RINGPROXY_TEST_MAIN"
	mainSyslogEnv = "RINGPROXY_TEST_SYSLOG"
)

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(mainArgsEnv); ok {
		if p := os.Getenv(mainSyslogEnv); p != "" {
			session.SyslogPath = p
		}
		os.Args = append([]string{"ringproxy"}, strings.Split(args, "\x1f")...)
		main()
		os.Exit(0) // main exits itself; this is for a main that returned
	}
	os.Exit(m.Run())
}

// runBinary runs the binary (main, in a process of its own) with args,
// env added, and returns stdout, stderr and the exit code.
func runBinary(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	// A command that should fail and serves instead is killed.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), append(env, mainArgsEnv+"="+strings.Join(args, "\x1f"))...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// Every error the binary prints begins with "ringproxy: ", one per line,
// config problems in their FILE:LINE: key: message form after it; the
// exit code is 1.
func TestErrorsBeginWithRingproxy(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, "[global]\nmaxconn = 0\n\n[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:80\"]\nbackend = \"app\"\ntimeout_client = \"3x\"\n"+
		"[[backend]]\nname = \"app\"\n[[backend.server]]\nname = \"s1\"\naddress = \"127.0.0.1:9000\"\n")
	badLines := fmt.Sprintf("ringproxy: %s:2: global.maxconn: must be at least 1, got 0\n"+
		"ringproxy: %s:8: frontend[0] (web).timeout_client: bad duration \"3x\": time: unknown unit \"x\" in duration \"3x\"\n", bad, bad)
	syslogged := filepath.Join(dir, "syslog.toml")
	writeFile(t, syslogged, strings.Replace(string(config.Default()), `target = "stdout"`, `target = "syslog"`, 1))
	noLog := filepath.Join(dir, "no-log")
	for _, c := range []struct {
		args []string
		env  []string
		want string // the whole of stderr
	}{
		{[]string{"check", "-c", bad}, nil, badLines},
		{[]string{"run", "-c", bad}, nil, badLines},
		{[]string{"check", "-c", syslogged}, []string{mainSyslogEnv + "=" + noLog},
			"ringproxy: access log to syslog: " + noLog + ": no such file or directory\n"},
		{[]string{"run", "-c", syslogged}, []string{mainSyslogEnv + "=" + noLog},
			"ringproxy: access log to syslog: " + noLog + ": no such file or directory\n"},
		{[]string{"frobnicate"}, nil, "ringproxy: unknown command \"frobnicate\"\nringproxy: " + usageLine + "\n"},
		{[]string{"check", "-c", filepath.Join(dir, "missing.toml")}, nil,
			"ringproxy: read config: open " + filepath.Join(dir, "missing.toml") + ": no such file or directory\n"},
		{[]string{"ctl", "--socket", filepath.Join(dir, "none.sock"), "show", "info"}, nil,
			"ringproxy: admin socket " + filepath.Join(dir, "none.sock") + ": dial unix " + filepath.Join(dir, "none.sock") + ": connect: no such file or directory\n"},
		{[]string{"ctl"}, nil, "ringproxy: ctl: which command? try: ringproxy ctl help\n"},
		{[]string{"check"}, nil, "ringproxy: Required flag \"config\" not set\n"},
		{[]string{"run", "--workers", "-1"}, nil, "ringproxy: --workers -1: want 0 (one per CPU) or more\n"},
	} {
		out, errOut, code := runBinary(t, c.env, c.args...)
		if code != 1 || errOut != c.want {
			t.Errorf("ringproxy %s: exit %d, stderr:\n%s\nwant exit 1, stderr:\n%s", strings.Join(c.args, " "), code, errOut, c.want)
		}
		if strings.HasPrefix(c.args[0], "run") && out != "" {
			t.Errorf("ringproxy %s: stdout %q", strings.Join(c.args, " "), out)
		}
	}
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
	out, errOut, code := runMain("check", "-c", path)
	if code != 1 || out != "" {
		t.Fatalf("check of a bad config: exit %d, stdout %q", code, out)
	}
	if want := "\nringproxy: " + path + ":8: frontend[0] (web).timeout_client: bad duration"; !strings.Contains("\n"+errOut, want) {
		t.Fatalf("stderr %q lacks the line %q", errOut, want)
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
	// An error answer is an error of the binary: on stderr, prefixed.
	out, errOut, code := runMain("ctl", "--socket", cfg.Admin.Socket, "disable", "server", "demo/nope")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "ringproxy: ctl disable server demo/nope: ") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("ctl with an error answer: exit %d, stdout %q, stderr %q", code, out, errOut)
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

// Every example config in deploy/examples passes check (on a host with
// a syslog socket: web-edge logs to it).
func TestDeployExamplesPassCheck(t *testing.T) {
	fakeSyslog(t)
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

// fakeSyslog points the syslog access log at a datagram socket of the
// test's, as journald's /dev/log is, for the rest of the test.
func fakeSyslog(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	saved := session.SyslogPath
	session.SyslogPath = path
	t.Cleanup(func() { session.SyslogPath = saved; sock.Close() })
	return sock
}
