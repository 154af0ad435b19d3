package statefile

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ringproxy/session"
	"ringproxy/session/admin"
)

// Settle is how long the writer waits after a change before it writes,
// so that a burst of changes (a backend going DOWN, a script draining a
// rack) is one write: the file lags the running state by this much.
const Settle = 100 * time.Millisecond

// Counts are a writer's writes since it started.
type Counts struct {
	Writes   uint64 // files written and renamed into place
	Failures uint64 // writes that failed (logged; the next change tries again)
}

// Writer keeps a state file up to date with the serving generation, on a
// goroutine of its own: Changed never blocks, so a checker or the admin
// socket can call it as they change a server.
type Writer struct {
	source func() session.Snapshot // the serving generation's
	log    *slog.Logger
	settle time.Duration

	mu      sync.Mutex // serializes writes and guards path and failing
	path    string
	failing bool // the last write failed: log the recovery

	kick chan struct{} // 1-buffered: a change is pending
	stop chan struct{}
	done chan struct{}

	writes   atomic.Uint64
	failures atomic.Uint64
}

// NewWriter starts a writer of path from what source returns.
func NewWriter(path string, source func() session.Snapshot, log *slog.Logger) *Writer {
	return newWriter(path, source, log, Settle)
}

func newWriter(path string, source func() session.Snapshot, log *slog.Logger, settle time.Duration) *Writer {
	w := &Writer{source: source, log: log, settle: settle, path: path,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Changed says the state changed: the file is written once the burst it
// belongs to has settled.
func (w *Writer) Changed() {
	select {
	case w.kick <- struct{}{}:
	default: // a write is pending already and will see this change
	}
}

// SetPath makes later writes go to path (a reload changed state_file).
func (w *Writer) SetPath(path string) {
	w.mu.Lock()
	w.path = path
	w.mu.Unlock()
}

// Flush writes the file now and says whether it could: at a clean stop,
// and after a start or a reload (a new config's servers).
func (w *Writer) Flush() error {
	return w.write()
}

// Close stops the writer; a change not yet written is dropped (Flush
// first for a last write).
func (w *Writer) Close() {
	close(w.stop)
	<-w.done
}

// Counts returns the writer's counts.
func (w *Writer) Counts() Counts {
	return Counts{Writes: w.writes.Load(), Failures: w.failures.Load()}
}

func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-w.stop:
			return
		case <-w.kick:
		}
		t.Reset(w.settle)
		select {
		case <-w.stop:
			t.Stop()
			return
		case <-t.C:
		}
		// Changes during the settle are in what is written now.
		select {
		case <-w.kick:
		default:
		}
		w.write()
	}
}

// write writes the serving state to the file. A failure is logged once
// until a write works again, counted, and never fatal: the next change
// tries again.
func (w *Writer) write() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	text := Text(w.source())
	if err := WriteFile(w.path, []byte(text)); err != nil {
		w.failures.Add(1)
		if !w.failing {
			w.log.Warn("state file: write failed; the next change tries again", "path", w.path, "err", err)
		}
		w.failing = true
		return err
	}
	w.writes.Add(1)
	if w.failing {
		w.log.Info("state file: written again", "path", w.path)
	}
	w.failing = false
	return nil
}

// Text is what the file holds for snap: show servers state's dump, then
// a comment per server added at runtime that says how to add it again.
func Text(snap session.Snapshot) string {
	var b strings.Builder
	b.WriteString(admin.ServersState(snap))
	for _, be := range snap.Backends {
		for _, sv := range be.Servers {
			if sv.Dynamic {
				b.WriteString(AddedPrefix + admin.AddServerArgs(be.Name, sv) + "\n")
			}
		}
	}
	return b.String()
}

// WriteFile replaces the file at path with data atomically: a file
// beside it in the same directory, synced, renamed over path, then the
// directory synced, so that a crash at any point leaves the old file or
// the new one, whole.
func WriteFile(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create a file beside it: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o640); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open its directory to fsync it: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync its directory %s: %w", dir, err)
	}
	return nil
}
