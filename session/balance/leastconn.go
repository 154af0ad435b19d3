package balance

import (
	"net/netip"
	"sync/atomic"
)

// leastConn picks the server with the fewest sessions relative to its
// weight. Like HAProxy it keys a server by (load+1)/weight: the +1 counts
// the session being placed, so among idle servers the heaviest wins and a
// weight-1 server with no session does not beat a weight-100 server with
// one. Keys are compared as cross products, (l_i+1)·w_j < (l_j+1)·w_i,
// exact in integers (loads would need 2^55 sessions to overflow).
//
// Ties go to the first candidate met from a starting point that rotates on
// every pick, so equal servers take turns instead of the first one taking
// every session of a burst (loads only rise once connections are counted).
// A pick is a lock-free O(servers) scan; HAProxy keeps a tree instead, which
// only pays for itself with hundreds of servers.
type leastConn struct {
	pool
	tierIdx atomic.Pointer[[]int32]
	rot     atomic.Uint64
}

func (c *leastConn) init(servers []Server, load Load) error {
	c.setup(servers, load)
	c.start(func(tier []int32) { c.tierIdx.Store(&tier) })
	return nil
}

func (c *leastConn) Pick(_ netip.Addr, avoid int) (int, bool) {
	tier := *c.tierIdx.Load()
	n := len(tier)
	if n == 0 {
		return -1, false
	}
	skip := skipping(avoid, n)
	k := int((c.rot.Add(1) - 1) % uint64(n))
	best := int32(-1)
	var bestLoad, bestWeight int64
	for range n {
		i := tier[k]
		if k++; k == n {
			k = 0
		}
		if int(i) == skip {
			continue
		}
		l, w := c.loadOf(i)+1, c.weight(i)
		if best < 0 || l*bestWeight < bestLoad*w {
			best, bestLoad, bestWeight = i, l, w
		}
	}
	return int(best), true
}
