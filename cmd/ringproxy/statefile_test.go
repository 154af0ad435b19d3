package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ringproxy/ring"
	"ringproxy/session"
	"ringproxy/session/admin"
	"ringproxy/session/statefile"
	"ringproxy/session/testbed"
)

// stateTOML is a config keeping its state in state, with servers main
// and canary (checked when check is set) behind frontend web.
func stateTOML(eng, sock, state string, web, main, canary netip.AddrPort, check string) string {
	return fmt.Sprintf(`[global]
engine = %q
workers = 2
state_file = %q
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
%s
  [[backend.server]]
  name = "main"
  address = "%s"
  [[backend.server]]
  name = "canary"
  address = "%s"
`, eng, state, sock, web, check, main, canary)
}

// servers is what the running process says of its servers, through the
// admin socket's show servers state (the state file's own format).
func servers(t *testing.T, sock string) map[string]session.SavedServer {
	t.Helper()
	out, err := admin.Send(sock, "show servers state")
	if err != nil {
		t.Fatal(err)
	}
	f, err := statefile.Parse("show servers state", strings.NewReader(out))
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	m := map[string]session.SavedServer{}
	for _, l := range f.Lines {
		m[l.Saved.Server] = l.Saved
	}
	return m
}

// inFile is what the state file at path holds of server name now.
func inFile(path, name string) (session.SavedServer, bool) {
	f, err := statefile.Read(path)
	if err != nil || f == nil {
		return session.SavedServer{}, false
	}
	for _, l := range f.Lines {
		if l.Saved.Server == name {
			return l.Saved, true
		}
	}
	return session.SavedServer{}, false
}

// whoServes asks the frontend at addr which server answered.
func whoServes(t *testing.T, addr netip.AddrPort) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	name, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read the server's name: %v", err)
	}
	return strings.TrimSpace(name)
}

func sendOK(t *testing.T, sock, command string) {
	t.Helper()
	if out, err := admin.Send(sock, command); err != nil || out != "" {
		t.Fatalf("%s: %q %v", command, out, err)
	}
}

// process is `ringproxy run -c FILE` in a process of its own (the test
// binary as main, see TestMain).
type process struct {
	cmd  *exec.Cmd
	logs *testbed.LogBuffer
	done chan error
}

func startProcess(t *testing.T, path string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(os.Args[0]), logs: &testbed.LogBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), mainArgsEnv+"="+strings.Join([]string{"run", "-c", path}, "\x1f"))
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
		}
	})
	return p
}

// stop sends SIGTERM and wants a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("ringproxy exited: %v\n%s", err, p.logs)
		}
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("ringproxy did not stop within 15 s of SIGTERM\n%s", p.logs)
	}
}

// A drained canary stays drained across a reload and across a restart
// (the process stopped, a new one started: only the file carries it),
// and so does a weight set at runtime; every client meanwhile goes to
// main. Both engines.
func TestStateFileDrainSurvivesReloadAndRestart(t *testing.T) {
	for _, eng := range ring.Engines {
		t.Run(eng, func(t *testing.T) {
			dir := t.TempDir()
			sock, state, path := filepath.Join(dir, "admin.sock"), filepath.Join(dir, "state"), filepath.Join(dir, "ringproxy.toml")
			main, canary := testbed.StartNamed(t, "main"), testbed.StartNamed(t, "canary")
			web := freePort(t)
			writeFile(t, path, stateTOML(eng, sock, state, web, main.Addr(), canary.Addr(), ""))
			first := startProcess(t, path)
			waitAdmin(t, sock, first.done)
			sendOK(t, sock, "set server app/canary state drain")
			sendOK(t, sock, "set weight app/main 7")
			testbed.WaitFor(t, 5*time.Second, func() bool {
				c, _ := inFile(state, "canary")
				m, _ := inFile(state, "main")
				return c.Admin == session.AdminDrain && m.Weight == 7
			}, "the state file to hold the drain and the weight")

			wantState := func(when string) {
				t.Helper()
				s := servers(t, sock)
				if s["canary"].Admin != session.AdminDrain {
					t.Errorf("%s: canary is %v, want drain", when, s["canary"].Admin)
				}
				if s["main"].Weight != 7 {
					t.Errorf("%s: main's weight is %d, want 7", when, s["main"].Weight)
				}
				for range 6 {
					if n := whoServes(t, web); n != "main" {
						t.Fatalf("%s: a client reached %s", when, n)
					}
				}
			}
			if out, err := admin.Send(sock, "reload"); err != nil || out != "reloaded\n" {
				t.Fatalf("reload: %q %v", out, err)
			}
			wantState("after a reload")

			first.stop(t)
			if c, _ := inFile(state, "canary"); c.Admin != session.AdminDrain {
				t.Fatalf("after a clean stop the file holds canary %+v", c)
			}
			second := startProcess(t, path)
			waitAdmin(t, sock, second.done)
			wantState("after a restart")
			if second.logs.Count("state file: server restored", "server=app/canary", "admin=drain") != 1 {
				t.Errorf("the new process does not log what it restored:\n%s", second.logs)
			}
			second.stop(t)
		})
	}
}

// A server the checks had DOWN when the process stopped starts DOWN in
// the next one, though it answers by then, and takes traffic only once
// rise checks pass. Both engines.
func TestStateFileDownStaysOutAfterRestart(t *testing.T) {
	for _, eng := range ring.Engines {
		t.Run(eng, func(t *testing.T) {
			dir := t.TempDir()
			sock, state, path := filepath.Join(dir, "admin.sock"), filepath.Join(dir, "state"), filepath.Join(dir, "ringproxy.toml")
			main := testbed.StartNamed(t, "main")
			web, canary := freePort(t), freePort(t) // nothing listens at canary yet
			check := "  [backend.check]\n  interval = \"%s\"\n  timeout = \"100ms\"\n  rise = 2\n  fall = 1\n"
			writeFile(t, path, stateTOML(eng, sock, state, web, main.Addr(), canary, fmt.Sprintf(check, "200ms")))
			first := startProcess(t, path)
			waitAdmin(t, sock, first.done)
			testbed.WaitFor(t, 5*time.Second, func() bool { c, ok := inFile(state, "canary"); return ok && c.Down }, "the file to hold canary DOWN")
			first.stop(t)

			ln, err := net.Listen("tcp", canary.String())
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					fmt.Fprintln(c, "canary")
					c.Close()
				}
			}()
			// Its first check comes within a second, the second a quarter
			// interval (500ms) later: it cannot be UP sooner than 500ms
			// after start.
			writeFile(t, path, stateTOML(eng, sock, state, web, main.Addr(), canary, fmt.Sprintf(check, "2s")))
			start := time.Now()
			second := startProcess(t, path)
			waitAdmin(t, sock, second.done)
			if s := servers(t, sock); !s["canary"].Down && time.Since(start) < 400*time.Millisecond {
				t.Fatal("canary, DOWN when the process stopped, starts UP")
			}
			testbed.WaitFor(t, 5*time.Second, func() bool { return !servers(t, sock)["canary"].Down }, "canary to come UP after its checks")
			second.stop(t)
		})
	}
}

// A torn or garbage state file is one warning naming the file and the
// line, and the process starts from the config's state (then writes a
// good file).
func TestStateFileGarbageIsIgnored(t *testing.T) {
	dir := t.TempDir()
	sock, state, path := filepath.Join(dir, "admin.sock"), filepath.Join(dir, "state"), filepath.Join(dir, "ringproxy.toml")
	main, canary := testbed.StartNamed(t, "main"), testbed.StartNamed(t, "canary")
	writeFile(t, path, stateTOML("uring", sock, state, freePort(t), main.Addr(), canary.Addr(), ""))
	good := "1\n# be_id ...\n3 app 2 canary 127.0.0.1 2 1 100 100 0 1 0 2 0 0 0 0 - 80 - 0 0 - - 0\n"
	writeFile(t, state, good[:len(good)-10]) // torn: canary in maint, cut short
	logs := &testbed.LogBuffer{}
	done := serveFileTo(t, path, slog.New(slog.NewTextHandler(logs, nil)))
	waitAdmin(t, sock, done)
	line := waitLog(t, logs, "state file not used")
	if !strings.Contains(line, state+":3: line cut short") {
		t.Errorf("the warning does not name the file and line: %s", line)
	}
	if s := servers(t, sock); s["canary"].Admin != session.AdminReady {
		t.Errorf("a torn file applied: canary %v", s["canary"].Admin)
	}
	if _, ok := inFile(state, "canary"); !ok {
		t.Error("the torn file was not replaced by a good one")
	}
	stopServe(t, done)
}

// check refuses a state_file whose directory is not a directory (or not
// writable), notes one that does not exist yet, and says which lines of
// the file a start would ignore.
func TestCheckStateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ringproxy.toml")
	cfg := func(state string) string {
		return stateTOML("uring", filepath.Join(dir, "admin.sock"), state, freePort(t), freePort(t), freePort(t), "")
	}
	writeFile(t, path, cfg(filepath.Join(dir, "missing", "state")))
	if out, errOut, code := runMain("check", "-c", path); code != 0 || !strings.Contains(out, "state file: "+filepath.Join(dir, "missing", "state")+": directory "+filepath.Join(dir, "missing")+" does not exist: nothing is kept until it does") {
		t.Errorf("a missing directory (systemd's StateDirectory makes it): exit %d, %q %q", code, out, errOut)
	}
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	writeFile(t, path, cfg(filepath.Join(dir, "file", "state")))
	if _, errOut, code := runMain("check", "-c", path); code != 1 || !strings.Contains(errOut, "is not a directory") {
		t.Errorf("a directory that is a file: exit %d, %q", code, errOut)
	}

	state := filepath.Join(dir, "state")
	writeFile(t, path, cfg(state))
	if out, errOut, code := runMain("check", "-c", path); code != 0 || !strings.Contains(out, "state file: "+state+": none yet, servers start from the config\n") {
		t.Errorf("no file yet: exit %d, %q %q", code, out, errOut)
	}
	writeFile(t, state, "1\n3 app 2 canary 127.0.0.1 2 8 100 100 0 1 0 2 0 0 0 0 - 80 - 0 0 - - 0\n"+
		"3 app 3 gone 127.0.0.1 2 0 100 100 0 1 0 2 0 0 0 0 - 80 - 0 0 - - 0\n")
	out, errOut, code := runMain("check", "-c", path)
	for _, want := range []string{
		"state file: " + state + ": 1 servers would start from it\n",
		"state file: " + state + ": would ignore line 3, app/gone: no server gone in backend app\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	writeFile(t, state, "1\ngarbage\n")
	if out, _, code := runMain("check", "-c", path); code != 0 || !strings.Contains(out, "state file: "+state+":2: 1 fields, want 20 to 25 (format version 1): a start would ignore the whole file") {
		t.Errorf("a garbage file: exit %d:\n%s", code, out)
	}
}

// A reload that moves state_file writes the new file at once and every
// change after it there; one that removes the key stops the writes.
func TestStateFileFollowsReload(t *testing.T) {
	dir := t.TempDir()
	sock, path := filepath.Join(dir, "admin.sock"), filepath.Join(dir, "ringproxy.toml")
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	main, canary := testbed.StartNamed(t, "main"), testbed.StartNamed(t, "canary")
	web := freePort(t)
	conf := func(state string) string {
		s := stateTOML("uring", sock, state, web, main.Addr(), canary.Addr(), "")
		if state == "" {
			s = strings.Replace(s, "state_file = \"\"\n", "", 1)
		}
		return s
	}
	writeFile(t, path, conf(first))
	done := serveFile(t, path)
	waitAdmin(t, sock, done)
	if _, ok := inFile(first, "canary"); !ok {
		t.Fatal("no state file written at start")
	}
	reload := func() {
		t.Helper()
		if out, err := admin.Send(sock, "reload"); err != nil || out != "reloaded\n" {
			t.Fatalf("reload: %q %v", out, err)
		}
	}
	writeFile(t, path, conf(second))
	reload()
	if _, ok := inFile(second, "canary"); !ok {
		t.Fatal("the state file the reload names is not written at once")
	}
	sendOK(t, sock, "set server app/canary state maint")
	testbed.WaitFor(t, 5*time.Second, func() bool { c, _ := inFile(second, "canary"); return c.Admin == session.AdminMaint }, "the maint in the new file")
	if c, _ := inFile(first, "canary"); c.Admin != session.AdminReady {
		t.Errorf("the old file was written after the reload moved it: canary %v", c.Admin)
	}

	writeFile(t, path, conf(""))
	reload()
	sendOK(t, sock, "set server app/canary state drain")
	time.Sleep(3 * statefile.Settle)
	if c, _ := inFile(second, "canary"); c.Admin != session.AdminMaint {
		t.Errorf("the file was written after a reload removed state_file: canary %v", c.Admin)
	}
	stopServe(t, done)
	if c, _ := inFile(second, "canary"); c.Admin != session.AdminMaint {
		t.Errorf("the file was written at the stop after a reload removed state_file: canary %v", c.Admin)
	}
}

// A server added at runtime and enabled is in the state file, and a new
// process adds it again, at its runtime weight and state, and serves
// through it; once deleted, it leaves the file. HAProxy skips the
// comment line that keeps it. Both engines.
func TestStateFileKeepsAddedServersAcrossRestart(t *testing.T) {
	for _, eng := range ring.Engines {
		t.Run(eng, func(t *testing.T) {
			dir := t.TempDir()
			sock, state, path := filepath.Join(dir, "admin.sock"), filepath.Join(dir, "state"), filepath.Join(dir, "ringproxy.toml")
			main, canary, extra := testbed.StartNamed(t, "main"), testbed.StartNamed(t, "canary"), testbed.StartNamed(t, "extra")
			web := freePort(t)
			writeFile(t, path, stateTOML(eng, sock, state, web, main.Addr(), canary.Addr(), ""))
			first := startProcess(t, path)
			waitAdmin(t, sock, first.done)
			if out, err := admin.Send(sock, "add server app/extra "+extra.Addr().String()+" weight 50 maxconn 9"); err != nil || out != "New server registered.\n" {
				t.Fatalf("add server: %q %v", out, err)
			}
			sendOK(t, sock, "set server app/main state maint")
			sendOK(t, sock, "set server app/canary state maint")
			sendOK(t, sock, "enable server app/extra")
			sendOK(t, sock, "set weight app/extra 40")
			testbed.WaitFor(t, 5*time.Second, func() bool { s, ok := inFile(state, "extra"); return ok && s.Weight == 40 }, "the added server in the file")
			first.stop(t)

			second := startProcess(t, path)
			waitAdmin(t, sock, second.done)
			s := servers(t, sock)
			if x, ok := s["extra"]; !ok || x.Weight != 40 || x.Admin != session.AdminReady || x.InitWeight != 50 {
				t.Fatalf("after a restart the added server is %+v (present %v), want weight 40 of 50, ready", x, ok)
			}
			for range 4 {
				if n := whoServes(t, web); n != "extra" {
					t.Fatalf("after a restart a client reached %s, want extra (the others in maint)", n)
				}
			}
			if out, _ := admin.Send(sock, "show stat"); !strings.Contains(out, "app,extra,") {
				t.Errorf("show stat lacks the restored server:\n%s", out)
			}
			sendOK(t, sock, "disable server app/extra")
			// The clients above are closed, but their sessions may not have
			// ended yet: del server refuses until they have.
			testbed.WaitFor(t, 5*time.Second, func() bool {
				out, err := admin.Send(sock, "del server app/extra")
				return err == nil && out == "Server deleted.\n"
			}, "del server once the sessions ended")
			testbed.WaitFor(t, 5*time.Second, func() bool {
				_, ok := inFile(state, "extra")
				b, _ := os.ReadFile(state)
				return !ok && !strings.Contains(string(b), statefile.AddedPrefix)
			}, "the deleted server out of the file")
			second.stop(t)
		})
	}
}
