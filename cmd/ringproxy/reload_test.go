package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"ringproxy/cmd/ringproxy/config"
	"ringproxy/session"
	"ringproxy/session/admin"
	"ringproxy/session/testbed"
)

// reloadTOML is a config with frontend web and, when extra is valid, a
// second frontend on it.
func reloadTOML(sock string, web, extra, echo netip.AddrPort) string {
	s := fmt.Sprintf(`[global]
workers = 2
[log]
access = false
[admin]
socket = %q
[[frontend]]
name = "web"
bind = ["%s"]
backend = "app"
[[backend]]
name = "app"
  [[backend.server]]
  name = "echo"
  address = "%s"
`, sock, web, echo)
	if extra.IsValid() {
		s += fmt.Sprintf("[[frontend]]\nname = \"extra\"\nbind = [\"%s\"]\nbackend = \"app\"\n", extra)
	}
	return s
}

func echoes(addr netip.AddrPort) error {
	c, err := net.DialTimeout("tcp", addr.String(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping\n" {
		return fmt.Errorf("echo %q: %v", b, err)
	}
	return nil
}

// SIGHUP and `ctl reload` apply a changed config file, telling systemd
// RELOADING=1 then READY=1; a broken file is refused with its file and
// line, and the running config goes on serving.
func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// serveFile runs serve on the config file at path, reloading from it, and
// returns the channel serve's result arrives on.
func serveFile(t *testing.T, path string) <-chan error {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- serve(cfg, func() (*session.Config, error) { return config.Load(path) }, quietLog(), nil)
	}()
	return done
}

func TestServeReloads(t *testing.T) {
	dir := t.TempDir()
	notifySock := filepath.Join(dir, "notify.sock")
	notes, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifySock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notes.Close()
	t.Setenv("NOTIFY_SOCKET", notifySock)
	note := func() string {
		notes.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 256)
		n, err := notes.Read(b)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(b[:n])
	}

	echo := testbed.StartEcho(t)
	a := testbed.FreeAddrs(t, 2)
	web, extra := a[0], a[1]
	sock := filepath.Join(dir, "admin.sock")
	path := filepath.Join(dir, "ringproxy.toml")
	write := func(s string) { writeFile(t, path, s) }
	write(reloadTOML(sock, web, netip.AddrPort{}, echo.Addr()))
	done := serveFile(t, path)
	if got := note(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if err := echoes(web); err != nil {
		t.Fatal(err)
	}

	// SIGHUP: a frontend is added.
	write(reloadTOML(sock, web, extra, echo.Addr()))
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	if got := note(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("on SIGHUP %q, want RELOADING=1 with MONOTONIC_USEC", got)
	}
	if got := note(); got != "READY=1" {
		t.Errorf("after the reload %q, want READY=1", got)
	}
	if err := echoes(extra); err != nil {
		t.Fatalf("the frontend added by SIGHUP: %v", err)
	}

	// A broken file: refused, named, and nothing changes.
	write(reloadTOML(sock, web, extra, echo.Addr()) + "[[backend]]\nname = 7\n")
	out, err := admin.Send(sock, "reload")
	if err != nil || !strings.HasPrefix(out, "error: ") || !strings.Contains(out, path+":") {
		t.Errorf("ctl reload of a broken file: %q, %v; want an error naming %s:LINE", out, err, path)
	}
	note()
	note()
	for _, a := range []netip.AddrPort{web, extra} {
		if err := echoes(a); err != nil {
			t.Errorf("after a refused reload %v: %v", a, err)
		}
	}

	// ctl reload: the frontend is removed, its port closes, web goes on.
	write(reloadTOML(sock, web, netip.AddrPort{}, echo.Addr()))
	if out, err := admin.Send(sock, "reload"); err != nil || out != "reloaded\n" {
		t.Fatalf("ctl reload: %q, %v", out, err)
	}
	testbed.WaitFor(t, 3*time.Second, func() bool { return echoes(extra) != nil }, "the removed frontend to close")
	if err := echoes(web); err != nil {
		t.Fatal(err)
	}
	if out, _ := admin.Send(sock, "show info"); !strings.Contains(out, "Nbthread: 2\n") {
		t.Errorf("show info after reloads: %q", out)
	}
	stopServe(t, done)
}

// A reload that moves [admin].stats to an address in use applies the rest
// of the config, says so, and keeps the admin socket and the old stats
// listener; the next reload moves the stats listener once it can.
func TestReloadAdminMoveFails(t *testing.T) {
	dir := t.TempDir()
	echo := testbed.StartEcho(t)
	a := testbed.FreeAddrs(t, 3)
	web, extra, oldStats := a[0], a[1], a[2]
	sock := filepath.Join(dir, "admin.sock")
	path := filepath.Join(dir, "ringproxy.toml")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	withStats := func(s string, addr string) string {
		return strings.Replace(s, "[admin]\n", "[admin]\nstats = \""+addr+"\"\n", 1)
	}
	writeFile(t, path, withStats(reloadTOML(sock, web, netip.AddrPort{}, echo.Addr()), oldStats.String()))
	done := serveFile(t, path)
	waitAdmin(t, sock, done)
	statsUp := func(a string) bool {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}

	writeFile(t, path, withStats(reloadTOML(sock, web, extra, echo.Addr()), busy.Addr().String()))
	out, err := admin.Send(sock, "reload")
	if want := "error: the new config serves, but admin stats: bind " + busy.Addr().String() + ": address already in use\n"; err != nil || out != want {
		t.Errorf("ctl reload with the stats address taken: %q, %v", out, err)
	}
	if err := echoes(extra); err != nil {
		t.Errorf("the rest of the config did not apply: %v", err)
	}
	if _, err := admin.Send(sock, "show info"); err != nil {
		t.Errorf("the admin socket after a failed stats move: %v", err)
	}
	if !statsUp(oldStats.String()) {
		t.Error("the old stats listener closed though the new one could not open")
	}

	busy.Close()
	if out, err := admin.Send(sock, "reload"); err != nil || out != "reloaded\n" {
		t.Errorf("reload once the address is free: %q, %v", out, err)
	}
	if !statsUp(busy.Addr().String()) || statsUp(oldStats.String()) {
		t.Error("the stats listener did not move on the next reload")
	}
	stopServe(t, done)
}

// redisStandIn passes the Redis and PostgreSQL examples' checks (AUTH,
// PING and INFO replication as a master; an SSLRequest answered N) and
// echoes every other line: a pooled client's request and reply.
func redisStandIn(t *testing.T) netip.AddrPort {
	return testbed.StartFunc(t, func(c *net.TCPConn) {
		r := bufio.NewReader(c)
		// An SSLRequest begins with a zero byte, no Redis command does.
		if b, err := r.Peek(1); err == nil && b[0] == 0 {
			if first, err := r.Peek(len(testbed.SSLRequest)); err == nil && bytes.Equal(first, testbed.SSLRequest) {
				r.Discard(len(first))
				io.WriteString(c, "N")
			}
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case line == "PING\r\n":
				line = "+PONG\r\n"
			case strings.HasPrefix(line, "AUTH "):
				line = "+OK\r\n"
			case line == "INFO replication\r\n":
				const info = "# Replication\r\nrole:master\r\n"
				line = fmt.Sprintf("$%d\r\n%s\r\n", len(info), info)
			}
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}).Addr()
}

// exampleOnLoopback rewrites a shipped example to run here: its binds and
// server addresses on loopback, an admin socket, and a grace shorter than
// the test so that a reload bounded by grace would show.
func exampleOnLoopback(t *testing.T, name, sock string, bind, srv netip.AddrPort, global string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../deploy/examples", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = regexp.MustCompile(`bind *= *\[[^\]]*\]`).ReplaceAllString(s, fmt.Sprintf("bind = [%q]", bind.String()))
	s = regexp.MustCompile(`address *= *"[^"]*"`).ReplaceAllString(s, fmt.Sprintf("address = %q", srv.String()))
	s = regexp.MustCompile(`allow *= *\[[^\]]*\]`).ReplaceAllString(s, `allow = ["127.0.0.0/8"]`)
	if !strings.Contains(s, "[global]\n") {
		t.Fatalf("%s has no [global] table", name)
	}
	s = strings.Replace(s, "[global]\n", "[global]\nworkers = 2\n"+global, 1)
	return s + fmt.Sprintf("\n[admin]\nsocket = %q\n", sock)
}

// pooled is a client connection kept open across reloads, as a
// connection pool's are.
type pooled struct {
	c *net.TCPConn
	r *bufio.Reader
}

func dialPooled(t *testing.T, addr netip.AddrPort) *pooled {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &pooled{c: c.(*net.TCPConn), r: bufio.NewReader(c)}
}

// ask sends one request on the pooled connection and waits for its reply.
func (p *pooled) ask(q string) error {
	p.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(p.c, q+"\r\n"); err != nil {
		return err
	}
	got, err := p.r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != q+"\r\n" {
		return fmt.Errorf("reply %q, want %q", got, q+"\r\n")
	}
	return nil
}

// The shipped Redis and PostgreSQL examples keep their pooled sessions
// through several reloads, each drain longer than grace: a reload lets
// the old generation serve until its sessions end (no hard_stop_after),
// as HAProxy does. SIGTERM then still ends everything within grace.
func TestReloadKeepsPooledSessions(t *testing.T) {
	for _, example := range []string{"redis.toml", "postgres.toml"} {
		t.Run(example, func(t *testing.T) {
			dir := t.TempDir()
			srv := redisStandIn(t)
			bind := testbed.FreeAddrs(t, 1)[0]
			sock := filepath.Join(dir, "admin.sock")
			path := filepath.Join(dir, "ringproxy.toml")
			writeFile(t, path, exampleOnLoopback(t, example, sock, bind, srv, "grace = \"300ms\"\n"))
			done := serveFile(t, path)
			waitAdmin(t, sock, done)
			pool := make([]*pooled, 4)
			for i := range pool {
				pool[i] = dialPooled(t, bind)
				if err := pool[i].ask(fmt.Sprintf("SET k%d v", i)); err != nil {
					t.Fatalf("before any reload: %v", err)
				}
			}
			for r := 1; r <= 3; r++ {
				if out, err := admin.Send(sock, "reload"); err != nil || out != "reloaded\n" {
					t.Fatalf("reload %d: %q, %v", r, out, err)
				}
				time.Sleep(500 * time.Millisecond) // longer than grace
				for i, p := range pool {
					if err := p.ask(fmt.Sprintf("GET k%d", i)); err != nil {
						t.Fatalf("pooled session %d after reload %d: %v", i, r, err)
					}
				}
				if err := dialPooled(t, bind).ask("PING?"); err != nil {
					t.Fatalf("a new session after reload %d: %v", r, err)
				}
			}
			start := time.Now()
			stopServe(t, done) // draining generations are bounded by grace too
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("SIGTERM took %v with grace 300ms", el)
			}
			for i, p := range pool {
				if err := p.ask("GET"); err == nil {
					t.Errorf("pooled session %d still served after SIGTERM and its grace", i)
				}
			}
		})
	}
}

// hard_stop_after bounds a reload's drain: the old generation's sessions
// are closed once it has passed.
func TestReloadHardStopAfter(t *testing.T) {
	dir := t.TempDir()
	srv := redisStandIn(t)
	bind := testbed.FreeAddrs(t, 1)[0]
	sock := filepath.Join(dir, "admin.sock")
	path := filepath.Join(dir, "ringproxy.toml")
	writeFile(t, path, exampleOnLoopback(t, "redis.toml", sock, bind, srv, "hard_stop_after = \"300ms\"\n"))
	done := serveFile(t, path)
	waitAdmin(t, sock, done)
	old := dialPooled(t, bind)
	if err := old.ask("SET a b"); err != nil {
		t.Fatal(err)
	}
	if out, err := admin.Send(sock, "reload"); err != nil || out != "reloaded\n" {
		t.Fatalf("reload: %q, %v", out, err)
	}
	testbed.WaitFor(t, 5*time.Second, func() bool { return old.ask("GET a") != nil }, "the old generation's session to be closed after hard_stop_after")
	fresh := dialPooled(t, bind)
	if err := fresh.ask("GET a"); err != nil {
		t.Fatalf("a new session after the hard stop: %v", err)
	}
	fresh.c.Close() // or SIGTERM would wait the default grace for it
	stopServe(t, done)
}

// stopServe sends SIGTERM to a serve started with serveFile and waits for
// it to return cleanly.
func stopServe(t *testing.T, done <-chan error) {
	t.Helper()
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10 s of SIGTERM")
	}
}

// waitAdmin waits until the admin socket of a serve started with
// serveFile answers.
func waitAdmin(t *testing.T, sock string, done <-chan error) {
	t.Helper()
	testbed.WaitFor(t, 5*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve: %v", err)
		default:
		}
		_, err := admin.Send(sock, "show info")
		return err == nil
	}, "the admin socket")
}

// Each reload's log says what triggered it, and the line for the
// generation it replaced says what that generation did from the reload
// on: the sessions it had, how many ended on their own, how many
// hard_stop_after closed, how long it took. Not its lifetime totals: the
// second reload's generation served sessions before it, which its line
// must not count.
func TestReloadLogsTriggerAndDrain(t *testing.T) {
	dir := t.TempDir()
	echo := testbed.StartEcho(t)
	web := testbed.FreeAddrs(t, 1)[0]
	sock := filepath.Join(dir, "admin.sock")
	path := filepath.Join(dir, "ringproxy.toml")
	withHardStop := func(d string) string {
		return strings.Replace(reloadTOML(sock, web, netip.AddrPort{}, echo.Addr()), "[global]\n", "[global]\nhard_stop_after = \""+d+"\"\n", 1)
	}
	writeFile(t, path, withHardStop("10s"))
	logs := &testbed.LogBuffer{}
	done := serveFileTo(t, path, slog.New(slog.NewTextHandler(logs, nil)))
	waitAdmin(t, sock, done)

	// SIGHUP, one long session that ends within hard_stop_after.
	first := dialPooled(t, web)
	if err := first.ask("one"); err != nil {
		t.Fatal(err)
	}
	// Reloads are numbered from the process's first; one a late signal of
	// an earlier test caused before this one's (they share the process)
	// is told apart by the session it did not have, so count from here.
	before := logs.Count(`msg=reloaded`)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	n := before + 1
	reloaded := waitLog(t, logs, `msg=reloaded`, fmt.Sprintf(" reload=%d ", n))
	wantFields(t, reloaded, map[string]string{"trigger": "SIGHUP"})
	if err := first.ask("still served by the old generation"); err != nil {
		t.Fatal(err)
	}
	first.c.Close()
	drained := waitLog(t, logs, `msg="previous generation drained"`, fmt.Sprintf(" reload=%d ", n))
	wantFields(t, drained, map[string]string{"trigger": "SIGHUP", "sessions": "1", "backlog": "0", "drained": "1", "killed": "0",
		"handed_over": "0", "hard_stop_after": "10s"})

	// The admin socket, a session that outlives hard_stop_after, and two
	// that ended before the reload.
	for range 2 {
		if err := echoes(web); err != nil {
			t.Fatal(err)
		}
	}
	// They have ended once the proxy has seen both sides close.
	testbed.WaitFor(t, 5*time.Second, func() bool {
		out, _ := admin.Send(sock, "show info")
		return strings.Contains(out, "\nCurrConns: 0\n")
	}, "the sessions before the reload to end")
	second := dialPooled(t, web)
	if err := second.ask("two"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, withHardStop("300ms"))
	if out, err := admin.Send(sock, "reload"); err != nil || out != "reloaded\n" {
		t.Fatalf("ctl reload: %q, %v", out, err)
	}
	wantFields(t, waitLog(t, logs, `msg=reloaded`, fmt.Sprintf(" reload=%d ", n+1)), map[string]string{"trigger": "admin-socket"})
	drained = waitLog(t, logs, `msg="previous generation drained"`, fmt.Sprintf(" reload=%d ", n+1))
	wantFields(t, drained, map[string]string{"trigger": "admin-socket", "sessions": "1", "backlog": "0", "drained": "0", "killed": "1",
		"handed_over": "0", "hard_stop_after": "300ms"})
	if took, err := time.ParseDuration(logFields(drained)["took"]); err != nil || took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("took=%s (%v), want about hard_stop_after (300ms): %s", logFields(drained)["took"], err, drained)
	}
	if err := second.ask("after the hard stop"); err == nil {
		t.Error("the session hard_stop_after should have closed is still served")
	}
	stopServe(t, done)
}

// serveFileTo is serveFile logging to log.
func serveFileTo(t *testing.T, path string, log *slog.Logger) <-chan error {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- serve(cfg, func() (*session.Config, error) { return config.Load(path) }, log, nil)
	}()
	return done
}

// waitLog waits for the one line of logs holding every word, as slog's
// text handler writes them (`msg="a b"`, `key=value`), and returns it.
func waitLog(t *testing.T, logs *testbed.LogBuffer, words ...string) string {
	t.Helper()
	testbed.WaitFor(t, 5*time.Second, func() bool { return logs.Count(words...) > 0 }, fmt.Sprintf("a log line with %q", words))
	lines := logs.Lines(words...)
	if len(lines) != 1 {
		t.Fatalf("%d log lines with %q, want 1:\n%s", len(lines), words, strings.Join(lines, "\n"))
	}
	return lines[0]
}

var logField = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logFields reads the key=value pairs of one slog text line.
func logFields(line string) map[string]string {
	out := map[string]string{}
	for _, m := range logField.FindAllStringSubmatch(line, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func wantFields(t *testing.T, line string, want map[string]string) {
	t.Helper()
	got := logFields(line)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q, in: %s", k, got[k], v, line)
		}
	}
}
