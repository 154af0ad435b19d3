package balance

import (
	"fmt"
	"net/netip"
	"sync"
)

// Server is what an algorithm knows of one server, fixed at construction.
type Server struct {
	Name string
	Addr netip.AddrPort // identifies the server for hashing (consistent), so independent proxies agree
	// Key, when set, identifies it for hashing instead of Addr: a
	// server named by DNS ("app1.internal:8080"), whose address may
	// change while its clients should stay with it.
	Key     string
	Weight  int  // 0..256; 0 = takes no new sessions
	Backup  bool // only used when no primary is usable
	MaxConn int  // 0 = unlimited; used by "first" to know when a server is full
	// Eweight is the weight the algorithms that Ramp use while the server
	// warms up (slow start), in 1/WeightScale of a unit of Weight:
	// 1..Weight×WeightScale. 0 means all of Weight (Weight×WeightScale).
	Eweight int
}

// WeightScale is how finely an effective weight divides a unit of
// Weight (HAProxy's BE_WEIGHT_SCALE): a warming server of weight 1 still
// ramps through 16 steps instead of jumping from 0 to 1.
const WeightScale = 16

// Ramps says whether algo weighs servers by Eweight, so that a warming
// server's share can grow while it runs. The static algorithms do not
// (static-rr's sequence and source's map would be rebuilt, and source's
// clients remapped, at every step; HAProxy's cannot change weights on
// the fly either), and first ignores weights.
func Ramps(algo string) bool {
	switch algo {
	case "roundrobin", "leastconn", "random", "consistent":
		return true
	}
	return false
}

// MaxWeight is the largest accepted Server.Weight (HAProxy's limit).
const MaxWeight = 256

// Load reports how many sessions server i holds now (connected, connecting or assigned),
// from counters the caller owns; leastconn, random and first read it.
// It is called from Pick, concurrently, so it must be cheap and safe for
// concurrent use (an atomic load). A nil Load reads as 0 for every server.
type Load func(i int) int64

// Balancer picks servers for new sessions. It is safe for concurrent use.
type Balancer interface {
	// Pick returns the server index for a new session from client. Servers marked
	// unusable are never returned; avoid (>= 0) is skipped unless it is the only usable
	// candidate (-1 = none). Primaries are considered first; backups only when no
	// primary is usable (weight > 0 and usable). ok is false when nothing is usable.
	Pick(client netip.Addr, avoid int) (idx int, ok bool)
	// SetUsable marks server i up or down (health checks, later); algorithms that
	// precompute tables rebuild them here (not in Pick). It panics if i is
	// out of range, like a slice index.
	SetUsable(i int, usable bool)
}

// Algorithms lists the accepted names.
var Algorithms = []string{"roundrobin", "static-rr", "leastconn", "source", "consistent", "random", "first"}

// New builds the named algorithm over servers. All servers start usable.
// servers is copied; its order is the declaration order ("first",
// "static-rr" and "source" depend on it, "consistent" does not).
func New(algo string, servers []Server, load Load) (Balancer, error) {
	for i, s := range servers {
		if s.Weight < 0 || s.Weight > MaxWeight {
			return nil, fmt.Errorf("balance: server %d (%s): weight %d out of 0..%d", i, s.Name, s.Weight, MaxWeight)
		}
		if s.Eweight < 0 || s.Eweight > s.Weight*WeightScale {
			return nil, fmt.Errorf("balance: server %d (%s): effective weight %d out of 0..%d", i, s.Name, s.Eweight, s.Weight*WeightScale)
		}
		if s.MaxConn < 0 {
			return nil, fmt.Errorf("balance: server %d (%s): maxconn %d is negative", i, s.Name, s.MaxConn)
		}
	}
	if load == nil {
		load = func(int) int64 { return 0 }
	}
	servers = append([]Server(nil), servers...)
	var b interface {
		Balancer
		init(servers []Server, load Load) error
	}
	switch algo {
	case "roundrobin":
		b = new(roundRobin)
	case "static-rr":
		b = new(staticRR)
	case "leastconn":
		b = new(leastConn)
	case "source":
		b = new(source)
	case "consistent":
		b = new(consistent)
	case "random":
		b = new(random)
	case "first":
		b = new(first)
	default:
		return nil, fmt.Errorf("balance: unknown algorithm %q (want one of %v)", algo, Algorithms)
	}
	if err := b.init(servers, load); err != nil {
		return nil, err
	}
	return b, nil
}

// pool is what every algorithm embeds: the servers, which of them are
// usable, and the hook that rebuilds the algorithm's snapshot. mu serialises
// SetUsable (and, for roundrobin only, Pick).
type pool struct {
	servers []Server
	load    Load
	rebuild func(tier []int32) // called with mu held, after every change of the tier

	mu     sync.Mutex
	usable []bool // guarded by mu
}

// SetUsable implements Balancer. Marking a server as it already is costs
// nothing: no rebuild, so health checks may report every result.
func (p *pool) SetUsable(i int, usable bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.usable[i] == usable {
		return
	}
	p.usable[i] = usable
	p.rebuild(p.tier())
}

// tier returns the servers Pick chooses among, in declaration order: the
// usable primaries with weight > 0, or if there is none, the usable backups
// with weight > 0. Called with mu held. The slice is fresh: algorithms keep it.
func (p *pool) tier() []int32 {
	var prim, back []int32
	for i, s := range p.servers {
		if !p.usable[i] || s.Weight == 0 {
			continue
		}
		if s.Backup {
			back = append(back, int32(i))
		} else {
			prim = append(prim, int32(i))
		}
	}
	if len(prim) > 0 {
		return prim
	}
	return back
}

// setup fills the pool; every server starts usable.
func (p *pool) setup(servers []Server, load Load) {
	p.servers, p.load = servers, load
	p.usable = make([]bool, len(servers))
	for i := range p.usable {
		p.usable[i] = true
	}
}

// start installs the rebuild hook and builds the first snapshot.
func (p *pool) start(rebuild func(tier []int32)) {
	p.rebuild = rebuild
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rebuild(p.tier())
}

// weight returns server i's effective weight (see Server.Eweight) as an
// int64, ready for cross products. Every weight is scaled alike, so
// shares between servers at full weight are the Weights'.
func (p *pool) weight(i int32) int64 { return int64(p.servers[i].effective()) }

// effective is s's weight now in 1/WeightScale units.
func (s *Server) effective() int {
	if s.Eweight > 0 {
		return s.Eweight
	}
	return s.Weight * WeightScale
}

// loadOf reads server i's load, clamping a negative count (a caller's
// accounting slip) to 0 so comparisons stay sane.
func (p *pool) loadOf(i int32) int64 {
	return max(p.load(int(i)), 0)
}

// skipping returns the index Pick must avoid: avoid itself when the tier
// has another candidate, else -1 (redispatching to the only server beats
// refusing the session).
func skipping(avoid int, n int) int {
	if n > 1 && avoid >= 0 {
		return avoid
	}
	return -1
}
