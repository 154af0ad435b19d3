package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"ringproxy/session"
	"ringproxy/session/statefile"
)

// The state file ([global].state_file) belongs to the process, not to a
// generation: one writer keeps it up to date with whichever generation
// serves, and each new generation, at start and at every reload, begins
// from what it holds (session.Proxy.Restore).

// restoreState makes p, not started yet, begin from cfg's state file
// and tell the instance of every change the file holds.
func (in *instance) restoreState(p *session.Proxy, cfg *session.Config) {
	p.OnStateChange(in.stateChanged)
	if path := cfg.Global.StateFile; path != "" {
		p.Restore(statefile.Load(path, cfg, in.log))
	}
}

// stateChanged is every generation's OnStateChange: the writer, if
// there is one, writes the serving generation's state soon.
func (in *instance) stateChanged() {
	if w := in.state.Load(); w != nil {
		w.Changed()
	}
}

// keepState makes the state file follow cfg, the serving config (at
// start and after each reload): a writer to its path, none without
// one, and the file written now, for the servers this config has.
func (in *instance) keepState(cfg *session.Config) {
	path := cfg.Global.StateFile
	w := in.state.Load()
	switch {
	case path == "" && w != nil:
		in.state.Store(nil)
		w.Close()
		in.log.Info("state file: no longer kept", "path", in.statePath)
		in.statePath = ""
		return
	case path == "":
		return
	case w == nil:
		w = statefile.NewWriter(path, in.Snapshot, in.log)
		in.state.Store(w)
	case path != in.statePath:
		w.SetPath(path)
	}
	in.statePath = path
	w.Flush() // a failure is logged and counted by the writer
}

// closeState writes the state file a last time and stops its writer:
// at a clean stop.
func (in *instance) closeState() {
	w := in.state.Swap(nil)
	if w == nil {
		return
	}
	if err := w.Flush(); err == nil {
		in.log.Info("state file written", "path", in.statePath)
	}
	w.Close()
}

// checkStateFile is what `check` says of cfg's state file: an error
// when its directory is not one the process can write (every write
// would fail), and notes on what a start would do with the file there
// now: ignore it (it cannot be read) or some of its lines. A directory
// that does not exist yet is a note: the service manager may make it.
func checkStateFile(cfg *session.Config) (notes []string, errs []error) {
	path := cfg.Global.StateFile
	if path == "" {
		return nil, nil
	}
	dir := filepath.Dir(path)
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, os.ErrNotExist):
		// Not an error: the systemd unit's StateDirectory= makes it as
		// the service starts, after a check run by hand at install.
		return []string{fmt.Sprintf("%s: directory %s does not exist: nothing is kept until it does (the systemd unit's StateDirectory=ringproxy makes /var/lib/ringproxy as the service starts)", path, dir)}, nil
	case err != nil:
		return nil, []error{fmt.Errorf("state_file %s: its directory: %w", path, err)}
	case !fi.IsDir():
		return nil, []error{fmt.Errorf("state_file %s: %s is not a directory", path, dir)}
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return nil, []error{fmt.Errorf("state_file %s: directory %s is not writable by this user: %w", path, dir, err)}
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, []error{fmt.Errorf("state_file %s: exists and is not a regular file", path)}
	}
	f, err := statefile.Read(path)
	var bad *statefile.Error
	switch {
	case errors.As(err, &bad):
		return []string{fmt.Sprintf("%v: a start would ignore the whole file and begin from the config's state", err)}, nil
	case err != nil:
		return nil, []error{fmt.Errorf("state_file %s: %w", path, err)}
	case f == nil:
		return []string{fmt.Sprintf("%s: none yet, servers start from the config", path)}, nil
	}
	saved, ignored := statefile.Match(f, cfg)
	notes = append(notes, fmt.Sprintf("%s: %d servers would start from it", path, len(saved)))
	for _, i := range ignored {
		notes = append(notes, fmt.Sprintf("%s: would ignore %v", path, i))
	}
	return notes, nil
}

// StateFile implements stats.StateFileSource: the state file writer's
// counts, while there is one.
func (in *instance) StateFile() (writes, failures uint64, ok bool) {
	w := in.state.Load()
	if w == nil {
		return 0, 0, false
	}
	c := w.Counts()
	return c.Writes, c.Failures, true
}
