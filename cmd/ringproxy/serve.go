package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"ringproxy/session"
	"ringproxy/session/admin"
	"ringproxy/session/ctlnet"
	"ringproxy/session/statefile"
	"ringproxy/session/stats"
)

// instance is one running ringproxy process: the generation of the proxy
// serving now, the ones still draining after a reload, and what outlives
// generations (the stats listener, the admin socket). Only the serve
// goroutine changes it; cur, stats and sock are atomic because the stats
// and admin goroutines read them.
type instance struct {
	log     *slog.Logger
	load    func() (*session.Config, error) // re-reads the config; nil: nothing to reload
	cfg     *session.Config                 // cur's
	cur     atomic.Pointer[session.Proxy]
	reloads chan chan error // `ctl reload` asks the serve goroutine
	nReload int             // reloads tried so far, numbering their log lines

	mu       sync.Mutex
	draining map[*session.Proxy]bool // previous generations not done yet
	drained  sync.WaitGroup

	stats atomic.Pointer[statsListener] // nil: none
	sock  atomic.Pointer[admin.Server]  // nil: none
	admin session.Admin                 // where stats and sock serve now

	state     atomic.Pointer[statefile.Writer] // [global].state_file's; nil: none
	statePath string                           // where it writes
}

// serve runs the proxy until SIGTERM or SIGINT, then drains for up to the
// grace period. A second signal ends the drain at once. SIGHUP and `ctl
// reload` apply the config load returns (see reload). started, if set, is
// called once the proxy accepts.
func serve(cfg *session.Config, load func() (*session.Config, error), log *slog.Logger, started func(*session.Proxy)) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)

	in := &instance{log: log, load: load, cfg: cfg, reloads: make(chan chan error), draining: map[*session.Proxy]bool{}}
	p, err := session.New(cfg, log)
	if err != nil {
		return err
	}
	in.restoreState(p, cfg)
	if err := p.Start(); err != nil {
		return err
	}
	in.cur.Store(p)
	in.keepState(cfg)
	defer in.closeState() // the last write, however serve ends
	logListening(log, cfg, p)
	if err := in.openAdmin(cfg); err != nil {
		p.Shutdown(0)
		return err
	}
	defer in.closeAdmin()
	log.Info("started", "workers", cfg.Global.Workers, "engine", cfg.Global.Engine, "maxconn", p.MaxConn())
	notify(log, daemon.SdNotifyReady)
	if started != nil {
		started(p)
	}
	for {
		select {
		case sig := <-sigs:
			return in.stop(sig, sigs)
		case <-hups:
			in.reload(triggerSIGHUP)
		case reply := <-in.reloads:
			reply <- in.reload(triggerSocket)
		case <-in.cur.Load().Done():
			return in.ended()
		}
	}
}

func logListening(log *slog.Logger, cfg *session.Config, p *session.Proxy) {
	for _, fe := range cfg.Frontends {
		log.Info("listening", "frontend", fe.Name, "addrs", p.Addrs(fe.Name), "backend", fe.BackendName)
	}
}

// stop drains the serving generation, and the ones still draining from
// reloads, for the serving config's grace, or ends everything at a second
// signal.
func (in *instance) stop(sig os.Signal, sigs <-chan os.Signal) error {
	p := in.cur.Load()
	grace := in.cfg.Global.Grace
	in.log.Info("stopping: draining sessions", "signal", sig.String(), "grace", grace, "draining_generations", in.drainingCount())
	notify(in.log, daemon.SdNotifyStopping)
	if w := in.state.Load(); w != nil {
		w.Flush() // now too, in case the drain outlasts the service manager's patience
	}
	in.mu.Lock()
	for old := range in.draining {
		go old.Shutdown(grace) // a reload let it serve until its sessions end
	}
	in.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		p.Shutdown(grace)
		in.drained.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case sig := <-sigs:
		in.log.Warn("second signal: closing every session now", "signal", sig.String())
		in.mu.Lock()
		for old := range in.draining {
			go old.Shutdown(0)
		}
		in.mu.Unlock()
		p.Shutdown(0)
		<-drained
	}
	return in.ended()
}

// ended reports how the serving generation ended.
func (in *instance) ended() error {
	p := in.cur.Load()
	if err := p.Err(); err != nil {
		return err
	}
	st := p.Stats()
	in.log.Info("stopped", "sessions", st.Accepted, "killed", st.Ended[session.ReasonKilled])
	return nil
}

// What started a reload, as its log lines say (trigger=): systemd's
// ExecReload and `kill -HUP` send SIGHUP; `ringproxy ctl reload` and a
// reload typed on the admin socket come through the socket.
const (
	triggerSIGHUP = "SIGHUP"
	triggerSocket = "admin-socket"
)

// Reload runs in-process: see session.Inherit. A new generation is built
// from the re-read config and takes over the listening sockets of every
// address both configs bind; once it accepts, the old one stops accepting
// and serves its sessions until they end, or for up to the new config's
// hard_stop_after when set (HAProxy's hard-stop-after): pooled database
// connections outlive any drain time. A config that does not load, or a
// generation that does not start (a new address already in use), leaves
// the old one serving as it was.
//
// Each reload's lines carry trigger= and reload=N, its number in this
// process; the line "previous generation drained" with the same N says
// what the generation it replaced did afterwards (see retire).
func (in *instance) reload(trigger string) error {
	in.nReload++
	log := in.log.With("trigger", trigger, "reload", in.nReload)
	notify(in.log, reloadingState())
	defer notify(in.log, daemon.SdNotifyReady)
	next, err := in.switchConfig(log)
	if err != nil {
		log.Error("reload failed: the running config goes on", "err", err)
		return err
	}
	if err := in.reopenAdmin(in.cfg); err != nil {
		log.Error("reloaded, but the admin listeners that could not move stay where they were", "err", err)
		return fmt.Errorf("the new config serves, but %w", err)
	}
	logListening(in.log, in.cfg, next)
	log.Info("reloaded", "workers", in.cfg.Global.Workers, "engine", in.cfg.Global.Engine, "maxconn", next.MaxConn(),
		"draining_generations", in.drainingCount())
	return nil
}

// switchConfig loads the file and makes a generation of it the serving
// one, retiring the old; log names the reload.
func (in *instance) switchConfig(log *slog.Logger) (*session.Proxy, error) {
	if in.load == nil {
		return nil, errors.New("this process has no config file to reload")
	}
	cfg, err := in.load()
	if err != nil {
		return nil, err
	}
	next, err := session.New(cfg, in.log)
	if err != nil {
		return nil, err
	}
	old := in.cur.Load()
	next.Inherit(old)
	in.restoreState(next, cfg)
	if err := next.Start(); err != nil {
		return nil, fmt.Errorf("start the new config: %w", err)
	}
	in.cur.Store(next)
	in.cfg = cfg
	in.keepState(cfg)
	setLogLevel(cfg.Log.Level)
	in.retire(old, cfg.Global.HardStopAfter, log)
	return next, nil
}

// retire lets old serve its sessions in the background until they end,
// or for up to hardStop when it is not 0, then logs what it did from
// the reload on, not its lifetime: sessions= were open then, backlog=
// started after (clients accepted before the cancel), drained= of them
// ended on their own, killed= were closed (hard_stop_after, or a
// SIGTERM's grace), handed_over= parked clients went to the new
// generation, took= is the drain's length.
func (in *instance) retire(old *session.Proxy, hardStop time.Duration, log *slog.Logger) {
	in.mu.Lock()
	in.draining[old] = true
	in.mu.Unlock()
	in.drained.Add(1)
	limit := "none"
	if hardStop > 0 {
		limit = hardStop.String()
	}
	go func() {
		defer in.drained.Done()
		d := old.Retire(hardStop)
		log.Info("previous generation drained", "sessions", d.Open, "backlog", d.Backlog, "drained", d.Finished,
			"killed", d.Killed, "handed_over", d.HandedOver, "took", d.Took.Round(time.Millisecond), "hard_stop_after", limit)
		in.mu.Lock()
		delete(in.draining, old)
		in.mu.Unlock()
	}()
}

func (in *instance) drainingCount() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.draining)
}

// Reload asks the serve goroutine to reload and waits for the outcome:
// `ctl reload` answers with it.
func (in *instance) Reload() error {
	reply := make(chan error, 1)
	select {
	case in.reloads <- reply:
	case <-time.After(30 * time.Second):
		return errors.New("the process is busy stopping or reloading")
	}
	return <-reply
}

// reloadingState is RELOADING=1 with the monotonic time systemd wants
// (Type=notify-reload, systemd 253) to match it with READY=1.
func reloadingState() string {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return fmt.Sprintf("%s\nMONOTONIC_USEC=%d", daemon.SdNotifyReloading, ts.Nano()/1000)
}

// openAdmin opens the stats listener and the admin socket cfg asks for.
func (in *instance) openAdmin(cfg *session.Config) error {
	st, err := serveStats(cfg, in, in.log)
	if err != nil {
		return err
	}
	sock, err := in.listenAdmin(cfg)
	if err != nil {
		st.Close()
		return err
	}
	in.stats.Store(st)
	in.sock.Store(sock)
	in.admin = cfg.Admin
	return nil
}

// listenAdmin opens the admin socket, or returns nil when cfg has none.
func (in *instance) listenAdmin(cfg *session.Config) (*admin.Server, error) {
	if cfg.Admin.Socket == "" {
		return nil, nil
	}
	reload := in.Reload
	if in.load == nil {
		reload = nil
	}
	sock, err := admin.Listen(cfg.Admin.Socket, os.FileMode(cfg.Admin.SocketMode),
		admin.Target{Proxy: in.cur.Load, Reload: reload, Listeners: in.ControlListeners, Log: in.log})
	if err != nil {
		return nil, err
	}
	in.log.Info("admin socket", "path", cfg.Admin.Socket)
	return sock, nil
}

func (in *instance) closeAdmin() {
	in.stats.Swap(nil).Close()
	if sock := in.sock.Swap(nil); sock != nil {
		sock.Close()
	}
}

// reopenAdmin moves the stats listener and the admin socket where a
// reload says. Each new one opens before the old closes: one that cannot
// open leaves the old in place (in.admin says what serves), and the next
// reload tries again. One that stays where it is is left alone: neither
// can have stopped serving, since their accept loops end only when they
// are closed (ctlnet).
func (in *instance) reopenAdmin(cfg *session.Config) error {
	var errs []error
	want := cfg.Admin
	if want.Stats != in.admin.Stats {
		if st, err := serveStats(cfg, in, in.log); err != nil {
			errs = append(errs, err)
		} else {
			in.stats.Swap(st).Close()
			in.admin.Stats = want.Stats
		}
	}
	switch {
	case want.Socket == in.admin.Socket && want.SocketMode != in.admin.SocketMode && want.Socket != "":
		if err := os.Chmod(want.Socket, os.FileMode(want.SocketMode)); err != nil {
			errs = append(errs, fmt.Errorf("admin socket %s: chmod %o: %w", want.Socket, want.SocketMode, err))
		} else {
			in.admin.SocketMode = want.SocketMode
		}
	case want.Socket != in.admin.Socket:
		if sock, err := in.listenAdmin(cfg); err != nil {
			errs = append(errs, err)
		} else {
			if old := in.sock.Swap(sock); old != nil {
				old.Close()
			}
			in.admin.Socket, in.admin.SocketMode = want.Socket, want.SocketMode
		}
	}
	return errors.Join(errs...)
}

// Snapshot implements stats.Source: the serving generation's.
func (in *instance) Snapshot() session.Snapshot { return in.cur.Load().Snapshot() }

// StatsAdmin implements stats.AdminSource: whether the serving
// generation's config lets the page act, and for which clients.
func (in *instance) StatsAdmin() (bool, []netip.Prefix) {
	a := in.cur.Load().Admin()
	return a.StatsAdmin, a.StatsAdminAllow
}

// Command implements stats.AdminSource: the page's actions are the
// admin socket's commands, run the same way.
func (in *instance) Command(line string) string {
	out := admin.Run(in.cur.Load(), line)
	in.log.Info("stats page action", "command", line, "answer", strings.TrimSpace(out))
	return out
}

// ControlListeners implements stats.ControlSource and feeds show info:
// the counts of the admin socket and the stats listener open now.
func (in *instance) ControlListeners() map[string]ctlnet.Counts {
	out := map[string]ctlnet.Counts{}
	if sock := in.sock.Load(); sock != nil {
		out["admin"] = sock.Counts()
	}
	if st := in.stats.Load(); st != nil {
		out["stats"] = st.ln.Counts()
	}
	return out
}

// The stats listener's limits. A scraper or a browser tab needs a
// connection or two; 64 leave room for several of each, and an idle flood
// holds 64 fds at most, for ReadHeaderTimeout or IdleTimeout. The pages
// read no request body, so a whole request is due within statsReadTimeout;
// statsWriteTimeout leaves a large config's /metrics ample time.
const (
	statsMaxConns          = session.StatsConns // the fd budget keeps fds for them
	statsReadHeaderTimeout = 5 * time.Second
	statsReadTimeout       = 10 * time.Second
	statsWriteTimeout      = 30 * time.Second
	statsIdleTimeout       = 30 * time.Second // between requests: longer than the usual 15 s scrape interval
)

// statsRefusal answers a connection past statsMaxConns: a client that
// sends its request at once may see a reset instead, since the request
// is never read.
var statsRefusal = httpRefusal(http.StatusServiceUnavailable, "too many stats connections\n")

func httpRefusal(status int, body string) []byte {
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

// statsListener is the [admin].stats HTTP server and the listener it
// serves, whose counts /metrics and show info report.
type statsListener struct {
	srv *http.Server
	ln  *ctlnet.Listener
}

// Close stops the server and closes its connections; a nil one has none.
func (st *statsListener) Close() {
	if st != nil {
		st.srv.Close()
	}
}

// serveStats runs the [admin].stats HTTP listener on a goroutine of its
// own, off the worker loops; it returns nil when cfg has none. net/http
// never sees an accept error (ctlnet retries them and logs each burst
// once), and what else it has to say goes to log.
func serveStats(cfg *session.Config, src *instance, log *slog.Logger) (*statsListener, error) {
	if !cfg.Admin.Stats.IsValid() {
		return nil, nil
	}
	inner, err := net.Listen("tcp", cfg.Admin.Stats.String())
	var sysErr *os.SyscallError
	switch {
	case errors.As(err, &sysErr) && sysErr.Syscall == "bind":
		return nil, statsBindError(cfg.Admin.Stats, sysErr.Err) // as check --bind-test says it
	case err != nil:
		return nil, fmt.Errorf("%s listener: %w", statsWhat, err)
	}
	ln := ctlnet.Wrap(inner, ctlnet.Options{Name: "stats listener", Log: log, MaxConns: statsMaxConns, Refusal: statsRefusal})
	srv := &http.Server{
		Handler:           stats.Handler(src),
		ReadHeaderTimeout: statsReadHeaderTimeout,
		ReadTimeout:       statsReadTimeout,
		WriteTimeout:      statsWriteTimeout,
		IdleTimeout:       statsIdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin stats listener failed", "err", err)
		}
	}()
	log.Info("stats", "addr", ln.Addr().String(), "paths", "/ /metrics /stats.json")
	return &statsListener{srv: srv, ln: ln}, nil
}
