package statefile

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// HAProxy (when installed: the tests' host has 2.6.12) reads the file
// ringproxy writes as ringproxy does: the drained server stays drained,
// the maintained one in maint, the runtime weight applies, matched by
// name though HAProxy numbers the backend otherwise.
func TestHAProxyReadsWhatRingproxyWrites(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed")
	}
	addrs := testbed.FreeAddrs(t, 4)
	be := &session.Backend{Name: "app", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: time.Second}
	for i, ap := range addrs[1:] {
		be.Servers = append(be.Servers, &session.Server{Name: string(rune('a' + i)), Address: ap, Weight: 10})
	}
	cfg := &session.Config{
		Global:    session.Global{Engine: "uring", Workers: 1, MaxConn: 64, MaxAccept: 8, BufSize: 4096},
		Frontends: []*session.Frontend{{Name: "web", Binds: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, BackendName: "app", Backend: be, TimeoutClient: time.Second}},
		Backends:  []*session.Backend{be},
	}
	p, err := session.New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	p.SetServerState("app", "a", session.AdminDrain)
	p.SetServerState("app", "b", session.AdminMaint)
	p.SetServerWeight("app", "c", 3)
	// A server added at runtime: its state line names a server HAProxy's
	// config lacks, and the comment that keeps it is skipped.
	if err := p.AddServer("app", session.NewServer{Name: "dyn", Address: addrs[0], Weight: 5}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	text := Text(p.Snapshot())
	if !strings.Contains(text, AddedPrefix+"app/dyn ") {
		t.Fatalf("the file does not keep the added server:\n%s", text)
	}
	if err := WriteFile(state, []byte(text)); err != nil {
		t.Fatal(err)
	}
	p.Shutdown(0)

	sock := filepath.Join(dir, "haproxy.sock")
	conf := fmt.Sprintf(`global
  stats socket %s level admin
  server-state-file %s
defaults
  mode tcp
  timeout connect 1s
  timeout client 1s
  timeout server 1s
  load-server-state-from-file global
frontend other
  bind %s
  default_backend app
backend app
  server a %s weight 10
  server b %s weight 10
  server c %s weight 10
`, sock, state, addrs[0], addrs[1], addrs[2], addrs[3])
	confPath := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(confPath, []byte(conf), 0o644)
	cmd := exec.Command(bin, "-db", "-f", confPath)
	logs := &testbed.LogBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var answer string
	testbed.WaitFor(t, 5*time.Second, func() bool {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		defer c.Close()
		io.WriteString(c, "show servers state\n")
		b, _ := io.ReadAll(c)
		answer = string(b)
		return true
	}, "HAProxy's stats socket")
	f, err := Parse("haproxy", strings.NewReader(strings.TrimSuffix(answer, "\n")))
	if err != nil {
		t.Fatalf("%v:\n%s", err, answer)
	}
	got := map[string]session.SavedServer{}
	for _, l := range f.Lines {
		got[l.Saved.Server] = l.Saved
	}
	if a := got["a"]; a.Admin != session.AdminDrain {
		t.Errorf("HAProxy read a as %+v, want drain", a)
	}
	if b := got["b"]; b.Admin != session.AdminMaint || !b.Down {
		t.Errorf("HAProxy read b as %+v, want maint, DOWN", b)
	}
	if c := got["c"]; c.Weight != 3 || c.InitWeight != 10 {
		t.Errorf("HAProxy read c as %+v, want weight 3 of 10", c)
	}
	if t.Failed() {
		t.Logf("HAProxy said:\n%s\nour file:\n%s", logs.String(), readAll(state))
	}
}

func readAll(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
