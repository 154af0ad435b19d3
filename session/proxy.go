package session

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"ringproxy/ring"
	"ringproxy/session/resolve"
)

// Proxy is the whole process's data path: its workers and the state they
// share (global and frontend session counts, round robin positions).
type Proxy struct {
	cfg     *Config
	log     *slog.Logger
	epoch   time.Time
	maxsock int
	splice  bool // cfg.Global.Splice
	// A frontend's socket options are set on its listeners, once, when
	// accepted sockets inherit them (ring.InheritsSockOpts); otherwise on
	// every accepted socket.
	optsOnListener bool

	maxPipes    int64             // splice pipes the budget allows (fdbudget.go)
	sockets     int               // listening sockets of all workers and frontends (see roomy)
	pipes       atomic.Int64      // splice pipes open now, all workers
	actconn     atomic.Int64      // sessions open now, all workers
	maxSeen     atomic.Int64      // highest actconn seen
	stopping    atomic.Bool       // stop accepting
	transitions atomic.Uint64     // server UP/DOWN changes
	adminMu     sync.Mutex        // serializes operators' server state changes (SetServerState)
	resolver    *resolve.Resolver // re-resolves servers named by DNS; nil when none is
	killing     atomic.Bool       // abort every session
	hist        history           // peaks, rates and state changes for the stats (history.go)

	access     *LogSink  // access log lines; nil when [log].access is off
	accessOut  io.Writer // overrides [log].target (tests)
	fes        []*frontend
	bes        []*backend
	nServers   atomic.Int32 // servers of all backends, deleted ones too; ServerCounters index them (server.gidx)
	nRouteHits int          // entries of worker.routeHits: every frontend's routes and default
	workers    []*worker
	binds      map[string][]netip.AddrPort // frontend name → bound addresses
	bound      map[netip.AddrPort][]int    // listening fds per address, for the next generation
	prev       *Proxy                      // the generation to take over from (Inherit); nil after Start
	saved      []SavedServer               // what a state file kept (Restore); nil after Start
	stateHook  func()                      // OnStateChange's; nil: nobody keeps a state file
	begin      chan struct{}               // closed when every worker is set up: only then do they accept

	heir        atomic.Pointer[Proxy] // the generation that took over our sockets
	adoptMu     sync.Mutex
	adopted     []adoptee     // clients the previous generation handed over, for worker 0
	adoptClosed bool          // every worker has exited: hand nothing more over
	done        chan struct{} // closed when every worker has exited
}

// New builds a proxy from a validated config. Nothing is bound yet.
func New(cfg *Config, log *slog.Logger) (*Proxy, error) {
	p := &Proxy{cfg: cfg, log: log, epoch: time.Now(), binds: map[string][]netip.AddrPort{}, done: make(chan struct{}), begin: make(chan struct{}), splice: cfg.Global.Splice}
	bes := map[*Backend]*backend{}
	for i, b := range cfg.Backends {
		be, err := newBackend(b, i, int(p.nServers.Load()))
		if err != nil {
			return nil, err
		}
		p.nServers.Add(int32(len(be.all())))
		bes[b] = be
		p.bes = append(p.bes, be)
	}
	for _, f := range cfg.Frontends {
		fe := &frontend{
			idx:        len(p.fes),
			cfg:        f,
			be:         bes[f.Backend],
			opts:       ring.SockOpts{NoDelay: f.TCPNoDelay, KeepAlive: f.KeepAlive, NoLinger: f.NoLinger},
			inspects:   f.Inspects(),
			needsHello: f.NeedsHello(),
			hits:       p.nRouteHits,
		}
		for _, r := range f.Routes {
			fe.routes = append(fe.routes, feRoute{rule: &r.Rule, be: bes[r.Backend]})
		}
		if len(f.Routes) > 0 {
			p.nRouteHits += len(f.Routes) + 1
		}
		if f.PerSourceRate > 0 {
			fe.sources = newSourceRates()
		}
		fe.wantsPeer = fe.needsPeer()
		p.fes = append(p.fes, fe)
	}
	p.hist.init(p)
	return p, nil
}

// SetServerUp marks server srv of backend be usable for new sessions or
// not. Sessions it already has go on. (Health checks will drive it.)
func (p *Proxy) SetServerUp(be, srv string, up bool) error {
	b, s, err := p.server(be, srv)
	if err != nil {
		return err
	}
	s.up.Store(up)
	b.refresh(s)
	p.stateChanged()
	return nil
}

func (p *Proxy) clock() int64 { return int64(time.Since(p.epoch)) }

// Admin is the [admin] this generation runs with.
func (p *Proxy) Admin() Admin { return p.cfg.Admin }

// MaxConn is the process's session limit as running: the configured one,
// or the one the fd limit allowed (see fitFdLimit).
func (p *Proxy) MaxConn() int { return p.cfg.Global.MaxConn }

// Addrs are the addresses frontend name listens on, ports resolved.
func (p *Proxy) Addrs(name string) []netip.AddrPort { return p.binds[name] }

// Done is closed once every worker has exited.
func (p *Proxy) Done() <-chan struct{} { return p.done }

// Err is the first worker failure, after Done.
func (p *Proxy) Err() error {
	var errs []error
	for _, w := range p.workers {
		errs = append(errs, w.err)
	}
	return errors.Join(errs...)
}
