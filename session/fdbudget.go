package session

import "fmt"

// The fd budget, as HAProxy computes maxsock from maxconn: every session
// holds its client's fd and its server's, spliced streams a pipe (two
// fds), and the process holds some of its own (listeners, rings, health
// checks, the control plane). When maxconn sessions would not fit the
// fd limit, an admitted client could find no fd for its server: a config
// that does not set maxconn gets one that fits, and one that sets it
// gets a warning naming the limit it needs.

// Fds outside sessions and listeners the budget keeps back: stdio, the Go
// runtime's netpoller, the access log, slack for the moments a reload
// holds two generations' rings.
const fdsFixed = 16

// The control plane's connection limits, which the fd budget keeps fds
// for (one more each for the listener) when the listener is configured:
// the admin socket's (session/admin; HAProxy's stats socket allows 10)
// and the stats listener's (cmd/ringproxy). A client past a limit is
// answered and closed at once.
const (
	AdminConns = 32
	StatsConns = 64
)

// fdsPerWorker are an engine's own fds: the ring (or epoll) and its
// wakeup eventfd.
const fdsPerWorker = 2

// pipesPerSession bounds splice pipes to a quarter of maxconn, as
// HAProxy's maxpipes defaults: a stream that finds none left stays on
// buffers.
const pipesPerSession = 4

// maxPipes is how many splice pipes the whole process may hold.
func maxPipes(g *Global) int64 {
	if !g.Splice {
		return 0
	}
	return int64(g.MaxConn / pipesPerSession)
}

// fdsReserved counts the fds cfg's process holds besides its sessions.
func fdsReserved(cfg *Config) int {
	n := fdsFixed + cfg.Global.Workers*fdsPerWorker
	for _, f := range cfg.Frontends {
		// Each socket, and the one client it may hold parked while a
		// limit stands (see roomy).
		n += 2 * len(f.Binds) * cfg.Global.Workers
	}
	for _, b := range cfg.Backends {
		if b.Check != nil {
			n += len(b.Servers) // one check in flight per server
		}
	}
	if cfg.Admin.Socket != "" {
		n += AdminConns + 1
	}
	if cfg.Admin.Stats.IsValid() {
		n += StatsConns + 1
	}
	return n
}

// fdsNeeded is the fd limit cfg's process needs at its maxconn.
func fdsNeeded(cfg *Config) int {
	return fdsReserved(cfg) + 2*cfg.Global.MaxConn + 2*int(maxPipes(&cfg.Global))
}

// fittingMaxConn is the largest maxconn whose budget fits limit fds.
func fittingMaxConn(cfg *Config, limit int) int {
	room := limit - fdsReserved(cfg)
	if cfg.Global.Splice {
		return room * pipesPerSession / (2*pipesPerSession + 2) // 2 fds a session, 2 a pipe
	}
	return room / 2
}

// fitFdLimit checks cfg's fd budget against limit (the fd ceiling; 0 =
// none known) and returns the config to run: cfg itself, or a copy with
// maxconn lowered when cfg left maxconn to its default. It logs either
// way when the budget does not fit.
func (p *Proxy) fitFdLimit(cfg *Config, limit int) (*Config, error) {
	need := fdsNeeded(cfg)
	if limit <= 0 || need <= limit {
		return cfg, nil
	}
	if !cfg.Global.MaxConnAuto {
		p.log.Warn("fd limit too low for maxconn: sessions may find no fd for their server and wait",
			"maxconn", cfg.Global.MaxConn, "fd_limit", limit, "fds_needed", need,
			"fix", fmt.Sprintf("raise LimitNOFILE (ulimit -n) to %d or lower maxconn to %d", need, fittingMaxConn(cfg, limit)))
		return cfg, nil
	}
	fit := fittingMaxConn(cfg, limit)
	if fit < 1 {
		return nil, fmt.Errorf("fd limit %d is too low: %d fds are needed before the first session (listeners, rings, checks, admin); raise LimitNOFILE (ulimit -n)",
			limit, fdsReserved(cfg))
	}
	c := *cfg
	c.Global.MaxConn = fit
	p.log.Info("maxconn lowered to fit the fd limit", "maxconn", fit, "default", cfg.Global.MaxConn, "fd_limit", limit,
		"fix", fmt.Sprintf("raise LimitNOFILE (ulimit -n) to %d for maxconn %d", need, cfg.Global.MaxConn))
	return &c, nil
}
