package session

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"ringproxy/ring"
	"ringproxy/session/balance"
	"ringproxy/session/health"
	"ringproxy/session/route"
)

// frontend is a Frontend's shared runtime state: workers reserve session
// slots against its maxconn.
type frontend struct {
	idx     int // in Proxy.fes and worker.feCnt
	cfg     *Frontend
	cur     atomic.Int64 // sessions open now, all workers
	opts    ring.SockOpts
	be      *backend
	rate    freqCtr      // new sessions per second (rate_limit)
	sources *sourceRates // per-source connection rates; nil when off
	sockets int          // listening sockets of all workers (see roomy)
	paused  atomic.Bool  // disable frontend: its sockets refuse clients

	routes     []feRoute // cfg.Routes with their backends, in order
	inspects   bool      // a route needs the client's first bytes (stInspect)
	needsHello bool      // a route needs the ClientHello parsed
	hits       int       // its first entry in worker.routeHits: one per route, then the default's
	wantsPeer  bool      // needsPeer, computed once
}

// feRoute is one of a frontend's routes.
type feRoute struct {
	rule *route.Rule
	be   *backend
}

// backend is a Backend's shared runtime state.
type backend struct {
	cfg     *Backend
	idx     int // in Proxy.bes and worker.queues
	servers []*server
	lb      atomic.Value    // balance.Balancer; replaced whole when a weight changes
	lbMu    sync.Mutex      // serializes balancer rebuilds and usability changes
	sticky  bool            // the algorithm fixes a client's server (source, consistent)
	monitor *health.Monitor // nil without [backend.check], an agent or observe
	queued  atomic.Int64    // sessions waiting for a slot, all workers
	// current is, with failback = false, 1 + the index of the server new
	// sessions stick to (0: none chosen yet); workers agree on it by CAS.
	current atomic.Int32
}

// server is a Server with its sockaddr built once; connects read it
// concurrently and never write it.
type server struct {
	cfg    *Server
	be     *backend
	idx    int // in backend.servers and the balancer
	gidx   int // in worker.srvCnt: servers of all backends
	sa     ring.Sockaddr
	cur    atomic.Int64  // slots held: sessions assigned to it, all workers
	up     atomic.Bool   // health: UP (true until checks say otherwise)
	admin  atomic.Uint32 // AdminState an operator set: ready, drain or maint
	weight atomic.Int32  // current weight (config, or set weight)
	// maxconn is the config's, or what the server's agent last set.
	maxconn atomic.Int64
}

// take reserves a slot on s against its maxconn.
func (s *server) take() bool { return reserve(&s.cur, s.maxconn.Load()) }

func newBackend(cfg *Backend, idx, firstServer int) (*backend, error) {
	b := &backend{cfg: cfg, idx: idx, sticky: cfg.Balance == "source" || cfg.Balance == "consistent"}
	views := make([]balance.Server, len(cfg.Servers))
	for i, s := range cfg.Servers {
		srv := &server{cfg: s, be: b, idx: i, gidx: firstServer + i}
		srv.sa.Set(s.Address)
		srv.up.Store(true)
		srv.weight.Store(int32(s.Weight))
		srv.maxconn.Store(int64(s.MaxConn))
		b.servers = append(b.servers, srv)
		views[i] = balance.Server{Name: s.Name, Addr: s.Address, Weight: s.Weight, Backup: s.Backup, MaxConn: s.MaxConn}
	}
	if err := b.rebuild(views); err != nil {
		return nil, fmt.Errorf("backend %s: %w", cfg.Name, err)
	}
	return b, nil
}

// sessions is how many sessions hold a slot on one of b's servers now
// (the access log's beconn).
func (b *backend) sessions() int64 {
	var n int64
	for _, s := range b.servers {
		n += s.cur.Load()
	}
	return n
}

func (b *backend) balancer() balance.Balancer { return b.lb.Load().(balance.Balancer) }

// rebuild makes a new balancer over views and carries the servers'
// usability over. Callers hold lbMu (or own b alone, at start).
func (b *backend) rebuild(views []balance.Server) error {
	lb, err := balance.New(b.cfg.Balance, views, func(i int) int64 { return b.servers[i].cur.Load() })
	if err != nil {
		return err
	}
	for _, s := range b.servers {
		if !s.usable() {
			lb.SetUsable(s.idx, false)
		}
	}
	b.lb.Store(lb)
	return nil
}

// usable says whether s takes new sessions: UP and ready.
func (s *server) usable() bool { return s.up.Load() && s.adminState() == AdminReady }

func (s *server) adminState() AdminState { return AdminState(s.admin.Load()) }

// refresh tells the balancer whether s is usable now.
func (b *backend) refresh(s *server) {
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	b.balancer().SetUsable(s.idx, s.usable())
}

// setWeight rebuilds the balancer with s's new weight.
func (b *backend) setWeight(s *server, w int) error {
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	views := b.views()
	views[s.idx].Weight = w
	if err := b.rebuild(views); err != nil {
		return err
	}
	s.weight.Store(int32(w))
	return nil
}

// setMaxConn changes s's maxconn (an agent's maxconn:N; 0 = no limit) and
// rebuilds the balancer, which first reads it.
func (b *backend) setMaxConn(s *server, n int) error {
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	views := b.views()
	views[s.idx].MaxConn = n
	if err := b.rebuild(views); err != nil {
		return err
	}
	s.maxconn.Store(int64(n))
	return nil
}

// views describes the servers as they are now, for a rebuild.
func (b *backend) views() []balance.Server {
	views := make([]balance.Server, len(b.servers))
	for i, x := range b.servers {
		c := x.cfg
		views[i] = balance.Server{Name: c.Name, Addr: c.Address, Weight: int(x.weight.Load()), Backup: c.Backup, MaxConn: int(x.maxconn.Load())}
	}
	return views
}

// pickFree asks the balancer for a server for client and reserves a slot
// on it. When that server is full, a sticky algorithm's session waits for
// it (nil); any other takes the next server of the same tier with room,
// or waits if there is none. usable is false when no server can take new
// sessions at all. avoid, when another server can take the session, is
// skipped: that is how a redispatch leaves a failing server.
func (b *backend) pickFree(client netip.Addr, avoid *server) (srv *server, usable bool) {
	if b.cfg.NoFailback {
		return b.pickCurrent(client, avoid)
	}
	return b.pickBalanced(client, avoid)
}

// pickCurrent is pickFree with failback = false: the server new sessions
// went to goes on taking them while it is usable (full, they queue for
// it), whatever the balancer would prefer; only once it is out does the
// balancer choose, and every worker then takes what the first chose, so
// no two servers get new sessions at once.
func (b *backend) pickCurrent(client netip.Addr, avoid *server) (*server, bool) {
	for {
		cur := b.current.Load()
		if cur > 0 {
			if s := b.servers[cur-1]; s.usable() && s != avoid {
				if s.take() {
					return s, true
				}
				return nil, true
			}
		}
		s, usable := b.pickBalanced(client, avoid)
		if s == nil {
			return nil, usable
		}
		if b.current.CompareAndSwap(cur, int32(s.idx+1)) || b.current.Load() == int32(s.idx+1) {
			return s, true
		}
		s.cur.Add(-1) // another worker moved it first: give the slot back, take theirs
	}
}

func (b *backend) pickBalanced(client netip.Addr, avoid *server) (srv *server, usable bool) {
	a := -1
	if avoid != nil {
		a = avoid.idx
	}
	i, ok := b.balancer().Pick(client, a)
	if !ok {
		return nil, false
	}
	picked := b.servers[i]
	if picked == avoid && !picked.cfg.Backup && b.cfg.Observe != nil {
		// The primary that just failed is the only one left: with observe
		// a redispatch goes to the backups instead, as nginx's backup does
		// once every primary has failed.
		if s := b.backupWithRoom(); s != nil {
			return s, true
		}
	}
	if picked.take() {
		return picked, true
	}
	if b.sticky {
		return nil, true
	}
	n := len(b.servers)
	for j := 1; j < n; j++ {
		s := b.servers[(i+j)%n]
		if s != avoid && s.cfg.Backup == picked.cfg.Backup && s.weight.Load() > 0 && s.usable() && s.take() {
			return s, true
		}
	}
	return nil, true
}

// reserve takes a slot against limit in cur, or reports it full.
// limit <= 0 means no limit.
func reserve(cur *atomic.Int64, limit int64) bool {
	if limit <= 0 {
		cur.Add(1)
		return true
	}
	for {
		v := cur.Load()
		if v >= limit {
			return false
		}
		if cur.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// backupWithRoom reserves a slot on the first usable backup that has one,
// nil if none has.
func (b *backend) backupWithRoom() *server {
	for _, s := range b.servers {
		if s.cfg.Backup && s.weight.Load() > 0 && s.usable() && s.take() {
			return s
		}
	}
	return nil
}
