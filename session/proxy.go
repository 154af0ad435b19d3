package session

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"ringproxy/mempool"
	"ringproxy/ring"
)

// listenBacklog is the kernel accept queue of each listening socket.
const listenBacklog = 4096

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

	maxPipes    int64         // splice pipes the budget allows (fdbudget.go)
	sockets     int           // listening sockets of all workers and frontends (see roomy)
	pipes       atomic.Int64  // splice pipes open now, all workers
	actconn     atomic.Int64  // sessions open now, all workers
	maxSeen     atomic.Int64  // highest actconn seen
	stopping    atomic.Bool   // stop accepting
	transitions atomic.Uint64 // server UP/DOWN changes
	killing     atomic.Bool   // abort every session

	access    *LogSink  // access log lines; nil when [log].access is off
	accessOut io.Writer // overrides [log].target (tests)
	fes       []*frontend
	bes       []*backend
	nServers  int // servers of all backends; ServerCounters index them
	workers   []*worker
	binds     map[string][]netip.AddrPort // frontend name → bound addresses
	bound     map[netip.AddrPort][]int    // listening fds per address, for the next generation
	prev      *Proxy                      // the generation to take over from (Inherit); nil after Start
	begin     chan struct{}               // closed when every worker is set up: only then do they accept

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
		be, err := newBackend(b, i, p.nServers)
		if err != nil {
			return nil, err
		}
		p.nServers += len(be.servers)
		bes[b] = be
		p.bes = append(p.bes, be)
	}
	for _, f := range cfg.Frontends {
		p.fes = append(p.fes, &frontend{
			idx:  len(p.fes),
			cfg:  f,
			be:   bes[f.Backend],
			opts: ring.SockOpts{NoDelay: f.TCPNoDelay, KeepAlive: f.KeepAlive, NoLinger: f.NoLinger},
		})
		if f.PerSourceRate > 0 {
			p.fes[len(p.fes)-1].sources = newSourceRates()
		}
	}
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
	return nil
}

func (p *Proxy) clock() int64 { return int64(time.Since(p.epoch)) }

// Start binds every frontend once per worker and starts the workers. It
// returns when every worker runs, or with the first error (then nothing
// is left running).
func (p *Proxy) Start() error {
	initNetpoll()
	if err := p.openAccessLog(); err != nil {
		return err
	}
	if err := p.start(); err != nil {
		if p.access != nil && p.workers == nil {
			p.access.Close()
		}
		return err
	}
	return nil
}

func (p *Proxy) start() error {
	nofile := ring.RaiseNoFile()
	limit := nofile
	p.maxsock = p.cfg.Global.MaxSock
	if p.maxsock == 0 {
		p.maxsock = nofile
	} else if nofile == 0 || p.maxsock < nofile {
		limit = p.maxsock
	}
	cfg, err := p.fitFdLimit(p.cfg, limit)
	if err != nil {
		return err
	}
	p.cfg = cfg
	p.maxPipes = maxPipes(&cfg.Global)
	n := p.cfg.Global.Workers
	p.optsOnListener = ring.InheritsSockOpts()
	fds, err := p.bindAll(n)
	if err != nil {
		return err
	}
	prev := p.prev
	p.inheritHealth()
	p.prev = nil // the old generation is not kept alive by the new
	if err := p.startChecks(); err != nil {
		for _, ls := range fds {
			for _, l := range ls {
				ring.CloseNow(l.fd)
			}
		}
		return err
	}
	cpus := ring.CPUs()
	for i := 0; i < n; i++ {
		cpu := -1
		if len(cpus) > 0 {
			cpu = cpus[i%len(cpus)]
		}
		p.workers = append(p.workers, p.newWorker(i, cpu, fds[i]))
	}
	addLoops(len(p.workers)) // given back by waitWorkers
	ready := make(chan error, n)
	for _, w := range p.workers {
		go w.run(ready)
	}
	var first error
	for range p.workers {
		if err := <-ready; err != nil && first == nil {
			first = err
		}
	}
	// No worker accepts before all are set up: a generation that fails
	// to start must not have taken clients from the shared sockets.
	if first != nil {
		p.stopping.Store(true)
		p.killing.Store(true)
	}
	close(p.begin)
	go p.waitWorkers()
	if first != nil {
		p.Shutdown(0)
		return first
	}
	if prev != nil {
		prev.heir.Store(p)
	}
	return nil
}

// bindAll opens one listening socket per worker per bind, or takes over
// the previous generation's sockets for that address (see Inherit). A
// bind to port 0 gets a kernel-chosen port for the first worker; the
// others bind that.
func (p *Proxy) bindAll(workers int) ([][]*listener, error) {
	ls := make([][]*listener, workers)
	p.bound = map[netip.AddrPort][]int{}
	for _, fe := range p.fes {
		for _, ap := range fe.cfg.Binds {
			fds, ap, err := p.listenFds(fe, ap, workers)
			if err != nil {
				for _, wl := range ls {
					for _, l := range wl {
						ring.CloseNow(l.fd)
					}
				}
				return nil, fmt.Errorf("frontend %s: %w", fe.cfg.Name, err)
			}
			// A worker takes more than one socket of a bind only when the
			// previous generation had more workers: none is closed, so
			// no client waiting in a socket's backlog is refused.
			for j, fd := range fds {
				i := j % workers
				ls[i] = append(ls[i], &listener{idx: uint32(len(ls[i])), fe: fe, fd: fd, addr: ap})
			}
			p.bound[ap] = fds
			p.binds[fe.cfg.Name] = append(p.binds[fe.cfg.Name], ap)
			fe.sockets += len(fds)
			p.sockets += len(fds)
		}
	}
	return ls, nil
}

// listenFds returns the sockets for bind ap of fe, at least one per
// worker: the previous generation's, then new ones, with the frontend's
// options when listeners carry them. ap comes back with its port resolved.
// On error it has closed every socket it had.
func (p *Proxy) listenFds(fe *frontend, ap netip.AddrPort, workers int) (fds []int, _ netip.AddrPort, err error) {
	defer func() {
		if err != nil {
			for _, fd := range fds {
				ring.CloseNow(fd)
			}
		}
	}()
	if fds, err = p.inherited(ap); err != nil {
		return nil, ap, err
	}
	for i := len(fds); i < workers; i++ {
		fd, err := ring.Listen(ap, listenBacklog)
		if err != nil {
			return fds, ap, err
		}
		if ap.Port() == 0 {
			ap, _ = ring.LocalAddr(fd)
		}
		fds = append(fds, fd)
	}
	if p.optsOnListener {
		for _, fd := range fds {
			if err := fe.opts.ApplyListener(fd); err != nil {
				return fds, ap, fmt.Errorf("listen %v: %w", ap, err)
			}
		}
	}
	return fds, ap, nil
}

// MaxConn is the process's session limit as running: the configured one,
// or the one the fd limit allowed (see fitFdLimit).
func (p *Proxy) MaxConn() int { return p.cfg.Global.MaxConn }

// Addrs are the addresses frontend name listens on, ports resolved.
func (p *Proxy) Addrs(name string) []netip.AddrPort { return p.binds[name] }

// SetAccessLog sends access lines to out instead of [log].target. Call
// it before Start.
func (p *Proxy) SetAccessLog(out io.Writer) { p.accessOut = out }

// accessLines is how many access lines may wait for the writer.
const accessLines = 4096

// openSyslog opens the local syslog (/dev/log) for access lines, facility
// daemon, severity info. Tests point it elsewhere.
var openSyslog = func() (io.Writer, error) {
	return syslog.New(syslog.LOG_INFO|syslog.LOG_DAEMON, "ringproxy")
}

func (p *Proxy) openAccessLog() error {
	if !p.cfg.Log.Access {
		return nil
	}
	out := p.accessOut
	if out == nil {
		switch p.cfg.Log.Target {
		case "stderr":
			out = os.Stderr
		case "syslog":
			w, err := openSyslog()
			if err != nil {
				return fmt.Errorf("access log to syslog: %w", err)
			}
			out = w
		default:
			out = os.Stdout
		}
	}
	p.access = NewLogSink(out, accessLines)
	return nil
}

// initNetpoll makes the Go runtime create its netpoller now. It does so
// lazily, at the first timer or network use, and if that moment comes
// when the process is out of fds (a flood, an exhaustion), epoll_create
// fails and the runtime aborts the whole process. An AfterFunc timer is
// put on the timer heap at once, which initializes the poller.
func initNetpoll() {
	time.AfterFunc(time.Hour, func() {}).Stop()
}

func (p *Proxy) waitWorkers() {
	for _, w := range p.workers {
		<-w.done
	}
	addLoops(-len(p.workers))
	p.adoptMu.Lock()
	p.adoptClosed = true
	for _, a := range p.adopted {
		ring.CloseNow(a.fd) // handed over as the last worker left
	}
	p.adopted = nil
	p.adoptMu.Unlock()
	p.stopChecks()
	if p.access != nil {
		p.access.Close()
	}
	close(p.done)
}

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

// kickQueues wakes the workers that have sessions waiting for a server
// slot: one has just freed.
func (p *Proxy) kickQueues(from *worker) {
	for _, w := range p.workers {
		if w != from && w.queued.Load() > 0 {
			w.queueKick.Store(true)
			w.wake()
		}
	}
}

// fail ends the process's data path after a worker loop failed: running
// on with one worker short would silently drop its share of clients.
func (p *Proxy) fail() {
	p.stopping.Store(true)
	p.killing.Store(true)
	p.wakeAll()
}

// Stop makes every worker stop accepting; live sessions go on.
func (p *Proxy) Stop() {
	p.stopping.Store(true)
	p.wakeAll()
}

// Shutdown stops accepting, lets live sessions finish for up to grace,
// then aborts the rest, and returns when every worker has exited.
func (p *Proxy) Shutdown(grace time.Duration) {
	p.Stop()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	}
	p.killing.Store(true)
	p.wakeAll()
	<-p.done
}

// Retire stops accepting and lets live sessions run until they end, as
// the generation a reload replaced does; with hardStop > 0 it aborts
// those still running after that long. It returns when every worker has
// exited.
func (p *Proxy) Retire(hardStop time.Duration) {
	if hardStop > 0 {
		p.Shutdown(hardStop)
		return
	}
	p.Stop()
	<-p.done
}

func (p *Proxy) wakeAll() {
	for _, w := range p.workers {
		if w.eng != nil {
			w.wake()
		}
	}
}

// release gives back a session's global and frontend slots and wakes
// workers waiting for one.
func (p *Proxy) release(from *worker, fe *frontend) {
	g := p.actconn.Add(-1)
	f := fe.cur.Add(-1)
	if g+1 < int64(p.cfg.Global.MaxConn) && (fe.cfg.MaxConn == 0 || f+1 < int64(fe.cfg.MaxConn)) {
		return // nobody can have been limited by these counts
	}
	for _, w := range p.workers {
		if w != from && w.waitSlot.Load() {
			w.slotFreed.Store(true)
			w.wake()
		}
	}
}

func (p *Proxy) noteConns() {
	n := p.actconn.Load()
	for {
		m := p.maxSeen.Load()
		if n <= m || p.maxSeen.CompareAndSwap(m, n) {
			return
		}
	}
}

// Stats sums every worker's counters, asking each loop for a copy so the
// loops never share their counters while running.
func (p *Proxy) Stats() Stats {
	st, _ := p.gather()
	return st
}

// gather asks every worker for its counters and sums them, process-wide
// and per scope.
func (p *Proxy) gather() (Stats, gathered) {
	var st Stats
	g := gathered{fe: make([]FrontendCounters, len(p.fes)), srv: make([]ServerCounters, p.nServers)}
	for _, w := range p.workers {
		c := w.counters()
		st.add(&c.Counters)
		for i := range c.fe {
			addFrontend(&g.fe[i], &c.fe[i])
		}
		for i := range c.srv {
			addServer(&g.srv[i], &c.srv[i])
		}
		g.workers = append(g.workers, WorkerStats{ID: w.id, CPU: w.cpu, Turns: c.Turns, Completions: c.Completions, Sessions: c.Accepted})
	}
	st.CurConns = p.actconn.Load()
	st.MaxConns = p.maxSeen.Load()
	st.ServerTransitions = p.transitions.Load()
	if p.access != nil {
		st.LogDropped = p.access.Dropped()
	}
	for _, b := range p.bes {
		st.CurQueue += b.queued.Load()
	}
	return st, g
}

// gathered is the per-scope part of gather.
type gathered struct {
	fe      []FrontendCounters
	srv     []ServerCounters
	workers []WorkerStats
}

func (p *Proxy) newWorker(id, cpu int, ls []*listener) *worker {
	g := &p.cfg.Global
	queues := make([]chanQueue, len(p.bes))
	for i := range queues {
		queues[i] = chanQueue{q: make([]chanRef, g.MaxConn)}
	}
	var hdrs []byte
	for _, b := range p.bes {
		if b.cfg.SendProxy != "" {
			hdrs = make([]byte, g.MaxConn*hdrSlot)
			break
		}
	}
	return &worker{
		hdrs:   hdrs,
		queues: queues,
		id:     id, cpu: cpu, p: p,
		log:       p.log.With("worker", id),
		listeners: ls,
		slab:      mempool.NewSlab[Session](g.MaxConn),
		timers:    newTimerHeap(g.MaxConn),
		bufWait:   newChanQueue(g.MaxConn),
		segs:      make([]segment, bufferCount(g)), // one per arena buffer
		statsCh:   make(chan workerStats, 1),
		ctl:       make(chan func(), 16),
		feCnt:     make([]FrontendCounters, len(p.fes)),
		srvCnt:    make([]ServerCounters, p.nServers),
		done:      make(chan struct{}),
	}
}
