package session

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

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
	idx     int                       // in Proxy.bes and worker.queues
	set     atomic.Pointer[serverSet] // replaced whole when a weight changes or a server is added or deleted
	lbMu    sync.Mutex                // serializes set rebuilds and usability changes
	sticky  bool                      // the algorithm fixes a client's server (source, consistent)
	monitor *health.Monitor           // nil without [backend.check], an agent or observe
	queued  atomic.Int64              // sessions waiting for a slot, all workers
	// current is, with failback = false, 1 + the index of the server new
	// sessions stick to (0: none chosen yet); workers agree on it by CAS.
	current atomic.Int32
}

// serverSet is a backend's servers and the balancer built over them,
// published together so that the index a pick returns names a server of
// the same set. Servers are only appended: a deleted server keeps its
// place, out of the balancer (weight 0, unusable), so indexes held by
// the health monitor, failback's current and live sessions stay valid.
type serverSet struct {
	servers []*server // by server.idx
	lb      balance.Balancer
}

// server is a Server and its runtime state. Its address can change at
// runtime (set server addr, DNS): connects load the current one, and a
// change publishes a new serverAddr, so no session takes a lock for it.
type server struct {
	cfg    *Server
	be     *backend
	idx    int // in backend.servers and the balancer
	gidx   int // in worker.srvCnt: servers of all backends
	addr   atomic.Pointer[serverAddr]
	cur    atomic.Int64  // slots held: sessions assigned to it, all workers
	up     atomic.Bool   // health: UP (true until checks say otherwise)
	admin  atomic.Uint32 // AdminState an operator set: ready, drain or maint
	weight atomic.Int32  // the weight it has when warm (config, or set weight): HAProxy's uweight
	limit  atomic.Int64  // its maxconn when warm: the config's, or what its agent last set (0 = unlimited)

	// What slow start lets it take now (see slowstart.go), written with
	// the balancer: maxconn (0 = unlimited) is limit but while it
	// warms up; shown is its effective weight in weight units, for
	// stats; throttle the percent of its weight it has while it warms up
	// (0: it is not warming up).
	maxconn  atomic.Int64
	shown    atomic.Int32
	throttle atomic.Int32
	warm     *warmup // guarded by be.lbMu; nil unless warming up

	// deleted: del server took it out; it stays in the set for the
	// indexes (see serverSet) but is never picked or listed again.
	deleted atomic.Bool
	dynamic bool         // added at runtime (add server), not from the config
	peak    atomic.Int64 // most slots held at once (HAProxy's smax)
	// addrChanges counts the times addr changed at runtime.
	addrChanges atomic.Uint64
	res         *resolution // nil unless named by DNS (cfg.FQDN)
	inherited   bool        // its address came from the previous generation (reload)
}

// serverAddr is one address of a server with its sockaddr built once. It
// is never written after it is published: a session keeps the one it
// connected to (Session.srvAddr), because the kernel may read the
// sockaddr after the connect was submitted, and the old address stays
// valid for it while new sessions take the new one.
type serverAddr struct {
	ap netip.AddrPort
	sa ring.Sockaddr
}

func newServerAddr(ap netip.AddrPort) *serverAddr {
	a := &serverAddr{ap: ap}
	a.sa.Set(ap)
	return a
}

// address is where new sessions to s connect now.
func (s *server) address() netip.AddrPort { return s.addr.Load().ap }

// take reserves a slot on s against its maxconn as it is now.
func (s *server) take() bool { return reserve(&s.cur, s.maxconn.Load()) }

func newBackend(cfg *Backend, idx, firstServer int) (*backend, error) {
	b := &backend{cfg: cfg, idx: idx, sticky: cfg.Balance == "source" || cfg.Balance == "consistent"}
	var servers []*server
	for i, s := range cfg.Servers {
		srv := &server{cfg: s, be: b, idx: i, gidx: firstServer + i}
		srv.addr.Store(newServerAddr(s.Address))
		if s.FQDN != "" {
			srv.res = &resolution{state: "ok"}
		}
		srv.up.Store(true)
		srv.weight.Store(int32(s.Weight))
		srv.limit.Store(int64(s.MaxConn))
		servers = append(servers, srv)
	}
	if err := b.rebuild(servers); err != nil {
		return nil, fmt.Errorf("backend %s: %w", cfg.Name, err)
	}
	return b, nil
}

// all is every server of b's current set, deleted ones included: for
// what indexes servers (the monitor, counters). Listings use servers.
func (b *backend) all() []*server { return b.set.Load().servers }

// servers is b's servers as an operator sees them: the deleted left out.
// It allocates only when a server was deleted.
func (b *backend) servers() []*server {
	all := b.all()
	for i, s := range all {
		if s.deleted.Load() {
			out := append([]*server(nil), all[:i]...)
			for _, s := range all[i+1:] {
				if !s.deleted.Load() {
					out = append(out, s)
				}
			}
			return out
		}
	}
	return all
}

// sessions is how many sessions hold a slot on one of b's servers now
// (the access log's beconn).
func (b *backend) sessions() int64 {
	var n int64
	for _, s := range b.all() {
		n += s.cur.Load()
	}
	return n
}

func (b *backend) balancer() balance.Balancer { return b.set.Load().lb }

// rebuild publishes servers with a new balancer over them, each server
// at its weight now (slow start's, while it warms up) and with its
// usability carried over. Callers hold lbMu (or own b alone, at start).
func (b *backend) rebuild(servers []*server) error {
	lb, err := balance.New(b.cfg.Balance, b.views(servers, time.Now()), func(i int) int64 { return servers[i].cur.Load() })
	if err != nil {
		return err
	}
	for _, s := range servers {
		if !s.usable() {
			lb.SetUsable(s.idx, false)
		}
	}
	b.set.Store(&serverSet{servers: servers, lb: lb})
	return nil
}

// usable says whether s takes new sessions: UP, ready, not deleted and,
// when named by DNS, resolved.
func (s *server) usable() bool {
	return s.up.Load() && s.adminState() == AdminReady && !s.deleted.Load() && (s.res == nil || !s.res.out.Load())
}

// inMaint says whether s is in maintenance, by an operator or by
// resolution: DOWN, its checks paused.
func (s *server) inMaint() bool {
	return s.adminState() == AdminMaint || s.res != nil && s.res.out.Load()
}

func (s *server) adminState() AdminState { return AdminState(s.admin.Load()) }

// refresh tells the balancer whether s is usable now.
func (b *backend) refresh(s *server) {
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	b.balancer().SetUsable(s.idx, s.usable())
}

// setWeight rebuilds the balancer with s's new weight. While s warms up
// it is the weight the ramp goes to, and the ramp goes on.
func (b *backend) setWeight(s *server, w int) error {
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	was := s.weight.Swap(int32(w))
	if err := b.reweigh(); err != nil {
		s.weight.Store(was)
		b.reweigh() // as it was, which built before
		return err
	}
	return nil
}

// setMaxConn changes s's maxconn (an agent's maxconn:N; 0 = no limit) and
// rebuilds the balancer, which first reads it.
func (b *backend) setMaxConn(s *server, n int) error {
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	was := s.limit.Swap(int64(n))
	if err := b.reweigh(); err != nil {
		s.limit.Store(was)
		b.reweigh() // as it was, which built before
		return err
	}
	return nil
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
			if s := b.all()[cur-1]; s.usable() && s != avoid {
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
	set := b.set.Load()
	i, ok := set.lb.Pick(client, a)
	if !ok {
		return nil, false
	}
	picked := set.servers[i]
	if picked == avoid && !picked.cfg.Backup && b.cfg.Observe != nil {
		// The primary that just failed is the only one left: with observe
		// a redispatch goes to the backups instead, as nginx's backup does
		// once every primary has failed.
		if s := b.backupWithRoom(set.servers); s != nil {
			return s, true
		}
	}
	if picked.take() {
		return picked, true
	}
	if b.sticky {
		return nil, true
	}
	n := len(set.servers)
	for j := 1; j < n; j++ {
		s := set.servers[(i+j)%n]
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
func (b *backend) backupWithRoom(servers []*server) *server {
	for _, s := range servers {
		if s.cfg.Backup && s.weight.Load() > 0 && s.usable() && s.take() {
			return s
		}
	}
	return nil
}
