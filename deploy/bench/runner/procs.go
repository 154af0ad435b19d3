package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one process the runner started: always under taskset, always in
// its own process group (so nginx's workers die with their master), always
// with SIGKILL as its parent-death signal, and always recorded in the pgid
// file that run.sh's trap reads if the runner itself dies.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	outPath string
	errPath string
	err     error // from Wait, valid once done is closed
}

type procTable struct {
	mu      sync.Mutex
	live    map[*proc]bool
	seq     int
	logDir  string
	pgidLog string
}

func (t *procTable) writePgids() {
	var b strings.Builder
	for p := range t.live {
		fmt.Fprintf(&b, "%d\n", p.cmd.Process.Pid)
	}
	_ = os.WriteFile(t.pgidLog, []byte(b.String()), 0o644)
}

// spawn starts argv pinned to cpu, with extra environment env. Its stdout
// and stderr go to files under the log directory.
func (t *procTable) spawn(name string, cpu int, env []string, argv ...string) (*proc, error) {
	t.mu.Lock()
	t.seq++
	base := filepath.Join(t.logDir, fmt.Sprintf("%03d-%s", t.seq, name))
	t.mu.Unlock()
	p := &proc{name: name, done: make(chan struct{}), outPath: base + ".out", errPath: base + ".err"}
	out, err := os.Create(p.outPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	errf, err := os.Create(p.errPath)
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	args := append([]string{"-c", strconv.Itoa(cpu)}, argv...)
	p.cmd = exec.Command("taskset", args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = out
	p.cmd.Stderr = errf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	t.mu.Lock()
	t.live[p] = true
	t.writePgids()
	t.mu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
		t.mu.Lock()
		delete(t.live, p)
		t.writePgids()
		t.mu.Unlock()
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the process to exit by itself; past that it
// is killed and an error says so.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s: still running after %s, killed", p.name, timeout)
	}
	if p.err != nil {
		return fmt.Errorf("%s: %v%s", p.name, p.err, p.stderrTail())
	}
	return nil
}

// stop sends SIGTERM to the process group, then SIGKILL if it has not
// exited after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
	// The group may hold children (nginx workers) that outlived the leader.
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
}

func (p *proc) kill() {
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
}

// stopAll stops every live process, in parallel.
func (t *procTable) stopAll() {
	t.mu.Lock()
	var ps []*proc
	for p := range t.live {
		ps = append(ps, p)
	}
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(3 * time.Second) }()
	}
	wg.Wait()
}

func (p *proc) stdout() string {
	b, _ := os.ReadFile(p.outPath)
	return string(b)
}

// stderrTail is ": " and the last non-empty line of stderr, or "".
func (p *proc) stderrTail() string {
	b, _ := os.ReadFile(p.errPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			if len(l) > 200 {
				l = l[:200] + "..."
			}
			return ": " + l
		}
	}
	return ""
}

// errSkip marks a target that cannot run in this build (the engine says it
// is "not supported yet"): its steps are reported as skipped, not failed.
type errSkip struct{ reason string }

func (e errSkip) Error() string { return "skipped: " + e.reason }

func isSkip(err error) (string, bool) {
	var s errSkip
	if errors.As(err, &s) {
		return s.reason, true
	}
	return "", false
}

// waitListening waits until every port has a listening socket on this
// machine, failing early if p exits (p may be nil).
func waitListening(p *proc, ports []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p != nil && p.exited() {
			tail := p.stderrTail()
			if strings.Contains(tail, "not supported") {
				return errSkip{reason: strings.TrimPrefix(tail, ": ")}
			}
			return fmt.Errorf("%s exited before listening (%v)%s", p.name, p.err, tail)
		}
		ok := true
		for _, port := range ports {
			if !listening(port) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listening on %v after %s", ports, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
