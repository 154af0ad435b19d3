package statefile

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/admin"
	"ringproxy/session/testbed"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// snapshot is a one-server snapshot with the given weight, counting how
// often it was taken.
type snapshot struct {
	weight atomic.Int64
	taken  atomic.Int64
}

func (s *snapshot) get() session.Snapshot {
	s.taken.Add(1)
	return session.Snapshot{Time: time.Now(), Backends: []session.BackendStats{{Name: "app", Servers: []session.ServerStats{{
		Name: "a", Addr: "127.0.0.1:8080", Up: true, Admin: "ready", Weight: int(s.weight.Load()), UserWeight: int(s.weight.Load()), InitWeight: 100,
		LastChange: time.Now(),
	}}}}}
}

func readSaved(t *testing.T, path string) []session.SavedServer {
	t.Helper()
	f, err := Read(path)
	if err != nil || f == nil {
		t.Fatalf("read %s: %v, %v", path, f, err)
	}
	var out []session.SavedServer
	for _, l := range f.Lines {
		out = append(out, l.Saved)
	}
	return out
}

// A burst of changes is one write, of the state after the burst; a
// change after it is another.
func TestWriterCoalesces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	var src snapshot
	w := newWriter(path, src.get, quiet(), 200*time.Millisecond)
	defer w.Close()
	for i := range 50 {
		src.weight.Store(int64(i))
		w.Changed()
	}
	testbed.WaitFor(t, 5*time.Second, func() bool { return w.Counts().Writes == 1 }, "the first write")
	time.Sleep(300 * time.Millisecond) // past another settle: nothing more is due
	if c := w.Counts(); c.Writes != 1 || src.taken.Load() != 1 {
		t.Fatalf("50 changes in a burst: %d writes (%d snapshots), want 1", c.Writes, src.taken.Load())
	}
	if got := readSaved(t, path); len(got) != 1 || got[0].Weight != 49 {
		t.Fatalf("after the burst the file holds %+v, want weight 49", got)
	}
	src.weight.Store(7)
	w.Changed()
	testbed.WaitFor(t, 5*time.Second, func() bool { return w.Counts().Writes == 2 }, "the second write")
	if got := readSaved(t, path); got[0].Weight != 7 {
		t.Fatalf("after a later change the file holds %+v, want weight 7", got)
	}
}

// A write that fails is counted, logged once, never fatal, and the next
// change tries again; nothing is left behind beside the file.
func TestWriterFailureRetriedOnNextChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state")
	var src snapshot
	logs := &syncWriter{b: &strings.Builder{}}
	log := slog.New(slog.NewTextHandler(logs, nil))
	w := newWriter(path, src.get, log, 10*time.Millisecond)
	defer w.Close()
	w.Changed()
	testbed.WaitFor(t, 5*time.Second, func() bool { return w.Counts().Failures == 1 }, "a failed write")
	w.Changed()
	testbed.WaitFor(t, 5*time.Second, func() bool { return w.Counts().Failures == 2 }, "a second failed write")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.Changed()
	testbed.WaitFor(t, 5*time.Second, func() bool { return w.Counts().Writes == 1 }, "the write once the directory exists")
	readSaved(t, path)
	out := logs.String()
	if n := strings.Count(out, "write failed"); n != 1 {
		t.Errorf("two failures in a row logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "written again") {
		t.Errorf("the recovery is not logged:\n%s", out)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "sub"))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want the state file alone", len(entries))
	}
}

// syncWriter lets the writer's goroutine log while the test reads.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// WriteFile replaces the file whole and leaves no temporary file; one
// that cannot be written leaves the old file as it was.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := WriteFile(path, []byte("old\n")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Fatalf("file holds %q", b)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if os.Geteuid() != 0 { // root writes anyway
		if err := WriteFile(path, []byte("newer\n")); err == nil {
			t.Fatal("a write into a read-only directory worked")
		}
		if b, _ := os.ReadFile(path); string(b) != "new\n" {
			t.Fatalf("a failed write left %q", b)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want the file alone", len(entries))
	}
}

// What a running proxy writes reads back as its state: drained and
// maintained servers, a runtime weight, the config's weight beside it.
func TestRoundTrip(t *testing.T) {
	a, b, c := testbed.StartNamed(t, "a"), testbed.StartNamed(t, "b"), testbed.StartNamed(t, "c")
	be := &session.Backend{Name: "app", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: time.Second}
	for i, ap := range []netip.AddrPort{a.Addr(), b.Addr(), c.Addr()} {
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
	defer p.Shutdown(0)
	p.SetServerState("app", "a", session.AdminDrain)
	p.SetServerState("app", "b", session.AdminMaint)
	p.SetServerWeight("app", "c", 3)
	f, err := Parse("state", strings.NewReader(admin.ServersState(p.Snapshot())))
	if err != nil {
		t.Fatal(err)
	}
	saved, ignored := Match(f, cfg)
	if len(ignored) != 0 {
		t.Errorf("ignored %v", ignored)
	}
	want := []session.SavedServer{
		{Backend: "app", Server: "a", Admin: session.AdminDrain, Weight: 10, InitWeight: 10, Addr: a.Addr()},
		{Backend: "app", Server: "b", Admin: session.AdminMaint, Weight: 10, InitWeight: 10, Down: true, Addr: b.Addr()},
		{Backend: "app", Server: "c", Weight: 3, InitWeight: 10, Addr: c.Addr()},
	}
	if len(saved) != len(want) {
		t.Fatalf("saved %+v", saved)
	}
	for i := range want {
		if saved[i] != want[i] {
			t.Errorf("saved %+v, want %+v", saved[i], want[i])
		}
	}
}
