package session

import (
	"slices"
	"time"

	"ringproxy/mempool"
	"ringproxy/ring"
)

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
	if err := p.prepareNames(); err != nil {
		return err
	}
	fds, err := p.bindAll(n)
	if err != nil {
		p.stopResolver()
		return err
	}
	prev := p.prev
	p.restoreSaved()
	p.inheritHealth()
	p.hist.begin(p.bes, time.Now())
	p.prev = nil // the old generation is not kept alive by the new
	if err := p.startChecks(); err != nil {
		p.stopResolver()
		p.stopWarmups() // a ramp inheritHealth carried over
		for _, ls := range fds {
			for _, l := range ls {
				ring.CloseNow(l.fd)
			}
		}
		return err
	}
	p.watchNames()
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
	go p.sampleRates()
	if first != nil {
		p.Shutdown(0)
		return first
	}
	if prev != nil {
		prev.heir.Store(p)
	}
	return nil
}

func (p *Proxy) newWorker(id, cpu int, ls []*listener) *worker {
	g := &p.cfg.Global
	queues := make([]chanQueue, len(p.bes))
	for i := range queues {
		queues[i] = chanQueue{q: make([]chanRef, g.MaxConn)}
	}
	var names []byte
	slot := hdrSlot
	if slices.ContainsFunc(p.fes, func(f *frontend) bool { return f.needsHello }) {
		names = make([]byte, g.MaxConn*nameSlot)
		slot = hdrSlotName
	}
	var hdrs []byte
	if slices.ContainsFunc(p.bes, func(b *backend) bool { return b.cfg.SendProxy != "" }) {
		hdrs = make([]byte, g.MaxConn*slot)
	}
	return &worker{
		hdrs:      hdrs,
		hdrSlot:   slot,
		names:     names,
		routeHits: make([]uint64, p.nRouteHits),
		queues:    queues,
		id:        id, cpu: cpu, p: p,
		log:       p.log.With("worker", id),
		listeners: ls,
		slab:      mempool.NewSlab[Session](g.MaxConn),
		timers:    newTimerHeap(g.MaxConn),
		bufWait:   newChanQueue(g.MaxConn),
		segs:      make([]segment, bufferCount(g)), // one per arena buffer
		statsCh:   make(chan workerStats, 1),
		ctl:       make(chan func(), 16),
		feCnt:     make([]FrontendCounters, len(p.fes)),
		srvCnt:    make([]ServerCounters, p.nServers.Load()),
		done:      make(chan struct{}),
	}
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
	p.stopResolver()
	p.stopChecks()
	p.stopWarmups()
	if p.access != nil {
		p.access.Close()
	}
	close(p.done)
}
