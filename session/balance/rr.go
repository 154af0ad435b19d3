package balance

import (
	"net/netip"
	"slices"
	"sync/atomic"
)

// roundRobin is nginx's smooth weighted round robin (SWRR): each pick adds
// every candidate's weight to its current value, takes the largest (first
// in declaration order on ties) and subtracts the total from it. Shares
// follow the weights exactly over each cycle of sum(weights) picks, and a
// heavy server's picks are spread out: weights {5,1,1} give a a b a c a a.
//
// The state is one per backend, shared by every worker, so the sequence is
// global; it changes on every pick, hence the mutex (held for one pass over
// the tier, once per new session).
type roundRobin struct {
	pool
	tierIdx []int32 // guarded by mu
	current []int64 // guarded by mu; per server
}

func (r *roundRobin) init(servers []Server, load Load) error {
	r.setup(servers, load)
	r.current = make([]int64, len(servers))
	r.start(func(tier []int32) {
		// A new tier starts a fresh cycle: stale currents of servers that
		// were down would otherwise make the returning server burst.
		clear(r.current)
		r.tierIdx = tier
	})
	return nil
}

func (r *roundRobin) Pick(_ netip.Addr, avoid int) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	skip := skipping(avoid, len(r.tierIdx))
	best := int32(-1)
	var total int64
	for _, i := range r.tierIdx {
		if int(i) == skip {
			continue // like nginx's "tried" servers: out of this round entirely
		}
		w := r.weight(i)
		r.current[i] += w
		total += w
		if best < 0 || r.current[i] > r.current[best] {
			best = i
		}
	}
	if best < 0 {
		return -1, false
	}
	r.current[best] -= total
	return int(best), true
}

// staticRR serves a precomputed weighted sequence, advanced by one atomic
// counter: no lock, one atomic add per pick. The sequence is rebuilt only
// when the tier changes (HAProxy's static-rr: weights cannot change on the
// fly, which is what makes it cheap).
type staticRR struct {
	pool
	seq  atomic.Pointer[sequence]
	next atomic.Uint64
}

func (s *staticRR) init(servers []Server, load Load) error {
	s.setup(servers, load)
	s.start(func(tier []int32) { s.seq.Store(s.sequence(tier)) })
	return nil
}

func (s *staticRR) Pick(_ netip.Addr, avoid int) (int, bool) {
	q := s.seq.Load()
	if len(q.order) == 0 {
		return -1, false
	}
	k := int((s.next.Add(1) - 1) % uint64(len(q.order)))
	return q.at(k, skipping(avoid, q.servers)), true
}

// sequence is a weighted, interleaved list of server indices: server i
// appears weight(i)/g times, g being the gcd of the tier's weights.
// Shared by static-rr (walked in order) and source (indexed by hash).
type sequence struct {
	order   []int32
	servers int // distinct servers in order
}

// at returns order[k], or if that is skip, the next entry that is not
// (there is one whenever skip >= 0, since skipping needs two servers).
func (q *sequence) at(k, skip int) int {
	for int(q.order[k]) == skip {
		k++
		if k == len(q.order) {
			k = 0
		}
	}
	return int(q.order[k])
}

// sequence builds the tier's sequence. Server i's j-th entry (0-based) is
// placed at virtual time (2j+1)/(2w_i), the middle of its j-th share of the
// cycle, and entries are sorted by that time (ties by index). Every prefix
// then holds each server within one entry of its exact share: interleaved,
// never bursty. Times are compared as cross products, exactly. It costs
// O(L log L) for L = sum(w)/g ≤ 256 × servers, in SetUsable only.
func (p *pool) sequence(tier []int32) *sequence {
	g := 0
	for _, i := range tier {
		g = gcd(g, p.servers[i].Weight)
	}
	type entry struct{ srv, j, w int64 }
	var es []entry
	for _, i := range tier {
		w := int64(p.servers[i].Weight / g)
		for j := range w {
			es = append(es, entry{int64(i), j, w})
		}
	}
	slices.SortFunc(es, func(a, b entry) int {
		// (2a.j+1)/(2a.w) vs (2b.j+1)/(2b.w)
		l, r := (2*a.j+1)*b.w, (2*b.j+1)*a.w
		switch {
		case l < r:
			return -1
		case l > r:
			return 1
		}
		return int(a.srv - b.srv)
	})
	q := &sequence{order: make([]int32, len(es)), servers: len(tier)}
	for k, e := range es {
		q.order[k] = int32(e.srv)
	}
	return q
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
