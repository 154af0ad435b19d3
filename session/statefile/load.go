package statefile

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"ringproxy/session"
)

// Ignored is a line of a state file that applies to no server of the
// config.
type Ignored struct {
	Line   int
	Server string // "backend/server", as the line names it
	Why    string
}

func (i Ignored) String() string { return fmt.Sprintf("line %d, %s: %s", i.Line, i.Server, i.Why) }

// Read opens and parses the state file at path. A file that does not
// exist yet, or is empty, is no state: (nil, nil).
func Read(path string) (*File, error) {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	defer fh.Close()
	f, err := Parse(path, fh)
	if errors.Is(err, ErrEmpty) {
		return nil, nil
	}
	return f, err
}

// Match splits f's lines into the servers of cfg they apply to, matched
// by backend and server name, and the lines that apply to none.
func Match(f *File, cfg *session.Config) ([]session.SavedServer, []Ignored) {
	if f == nil {
		return nil, nil
	}
	backends := map[string]map[string]bool{}
	for _, b := range cfg.Backends {
		servers := map[string]bool{}
		for _, s := range b.Servers {
			servers[s.Name] = true
		}
		backends[b.Name] = servers
	}
	var saved []session.SavedServer
	var ignored []Ignored
	for _, l := range f.Lines {
		name := l.Saved.Backend + "/" + l.Saved.Server
		servers, ok := backends[l.Saved.Backend]
		switch {
		case !ok:
			ignored = append(ignored, Ignored{l.Num, name, "no backend " + l.Saved.Backend + " in the config"})
		case !servers[l.Saved.Server] && f.Added[[2]string{l.Saved.Backend, l.Saved.Server}] != (session.NewServer{}):
			ns := f.Added[[2]string{l.Saved.Backend, l.Saved.Server}]
			l.Saved.Added = &ns
			saved = append(saved, l.Saved)
		case !servers[l.Saved.Server]:
			ignored = append(ignored, Ignored{l.Num, name, "no server " + l.Saved.Server + " in backend " + l.Saved.Backend})
		default:
			saved = append(saved, l.Saved)
		}
	}
	for _, l := range f.Duplicates {
		ignored = append(ignored, Ignored{l.Num, l.Saved.Backend + "/" + l.Saved.Server, "names a server an earlier line named"})
	}
	return saved, ignored
}

// Load reads the state file at path for cfg, as a start or a reload
// does, logging what it finds: a file it cannot use is one warning
// naming the file and line, and the config's state goes on; each line
// that applies to no server of cfg is one line of log. It returns what
// session.Proxy.Restore takes.
func Load(path string, cfg *session.Config, log *slog.Logger) []session.SavedServer {
	f, err := Read(path)
	switch {
	case err != nil:
		log.Warn("state file not used: starting from the config's state", "err", err)
		return nil
	case f == nil:
		log.Info("state file: none yet, starting from the config's state", "path", path)
		return nil
	}
	saved, ignored := Match(f, cfg)
	for _, i := range ignored {
		log.Info("state file: line ignored", "path", path, "line", i.Line, "server", i.Server, "why", i.Why)
	}
	log.Info("state file read", "path", path, "servers", len(saved), "ignored", len(ignored))
	return saved
}
