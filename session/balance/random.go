package balance

import (
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
)

// random is the power of two random choices: draw two servers at random,
// each with probability proportional to its weight, and keep the one less
// loaded relative to its weight. It spreads load nearly as well as
// leastconn without scanning every server, and since many proxies drawing
// independently do not herd onto the one least-loaded server, it stays good
// when loads are stale.
//
// Loads are compared as l_a·w_b vs l_b·w_a, without leastconn's +1 (as
// HAProxy's random does): on a tie, idle backends included, the first draw
// wins, so idle servers receive sessions in proportion to their weights.
type random struct {
	pool
	snap atomic.Pointer[cumulative]
	rng  wyrand
}

// cumulative is the tier with its running weight sums, for weighted draws
// by binary search.
type cumulative struct {
	tier  []int32
	end   []int64 // end[k] = w(tier[0]) + ... + w(tier[k])
	pos   []int32 // per server: its position in tier, or -1
	total int64
}

func (r *random) init(servers []Server, load Load) error {
	r.setup(servers, load)
	r.rng.state.Store(rand.Uint64()) // distinct proxies must not draw in lockstep
	r.start(func(tier []int32) {
		c := &cumulative{tier: tier, end: make([]int64, len(tier)), pos: make([]int32, len(servers))}
		for i := range c.pos {
			c.pos[i] = -1
		}
		for k, i := range tier {
			c.total += r.weight(i)
			c.end[k] = c.total
			c.pos[i] = int32(k)
		}
		r.snap.Store(c)
	})
	return nil
}

func (r *random) Pick(_ netip.Addr, avoid int) (int, bool) {
	c := r.snap.Load()
	if len(c.tier) == 0 {
		return -1, false
	}
	// Redispatch: draw over the total without avoid's weight, then step over
	// its interval, so avoid is never drawn and the others keep their odds.
	total, skipFrom, skipW := c.total, int64(-1), int64(0)
	if s := skipping(avoid, len(c.tier)); s >= 0 && s < len(c.pos) && c.pos[s] >= 0 {
		skipW = r.weight(int32(s))
		skipFrom = c.end[c.pos[s]] - skipW
		total -= skipW
	}
	a, b := r.draw(c, total, skipFrom, skipW), r.draw(c, total, skipFrom, skipW)
	if r.loadOf(b)*r.weight(a) < r.loadOf(a)*r.weight(b) {
		a = b
	}
	return int(a), true
}

// draw returns a tier server with probability weight/total.
func (r *random) draw(c *cumulative, total, skipFrom, skipW int64) int32 {
	hi, _ := bits.Mul64(r.rng.next(), uint64(total))
	x := int64(hi)
	if skipFrom >= 0 && x >= skipFrom {
		x += skipW
	}
	// First k with end[k] > x.
	lo, up := 0, len(c.end)
	for lo < up {
		m := int(uint(lo+up) >> 1)
		if c.end[m] <= x {
			lo = m + 1
		} else {
			up = m
		}
	}
	return c.tier[lo]
}

// wyrand is a 64-bit PRNG whose whole state is one counter, so concurrent
// workers advance it with a single atomic add: no lock, no allocation, and
// every caller gets a distinct output.
type wyrand struct{ state atomic.Uint64 }

func (w *wyrand) next() uint64 {
	s := w.state.Add(0xa0761d6478bd642f)
	hi, lo := bits.Mul64(s, s^0xe7037ed1a0b428db)
	return hi ^ lo
}
