package balance

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// PointsPerWeight is how many ring points each unit of weight gives a server
// (HAProxy's weight × 16). At the default weight 100 that is 1600 points and
// ten equal servers get 9.6–10.3% of clients each; at weight 1 (16 points)
// it is 6–15%, so give consistent backends weights of 10 or more. A
// warming server (Server.Eweight) owns the first of its points, one per
// unit of effective weight: as it warms up it only takes clients from the
// others, and at full weight it owns what it owns without slow start.
const PointsPerWeight = 16

// consistent is a hash ring: each server with weight w owns w×16 points at
// hash(its address, j), and a client goes to the owner of the first point at
// or after hash(client), wrapping around. Points depend only on the server's
// address and weight, never on its index or on the other servers, so:
//   - independent proxies listing the same servers in any order agree;
//   - removing a server moves only its own clients (to the next points'
//     owners), about its share 1/N; putting it back restores every mapping.
//
// Every server's points are hashed and sorted once, in New; SetUsable only
// filters them by the new tier (O(points), no hashing or sorting). A Pick is
// one hash and a binary search over an immutable snapshot.
type consistent struct {
	pool
	all  ring // every server with weight > 0, built once
	ring atomic.Pointer[ring]
}

// ring is sorted by hash; owner[k] owns hash[k]. Kept as two slices so the
// binary search touches only hashes.
type ring struct {
	hash    []uint64
	owner   []int32
	servers int // distinct owners
}

func (c *consistent) init(servers []Server, load Load) error {
	c.setup(servers, load)
	type point struct {
		h   uint64
		srv int32
	}
	var pts []point
	seen := make(map[string]int, len(servers))
	for i, s := range servers {
		if s.Weight == 0 {
			continue // never a candidate, and its points would only cost memory
		}
		if !s.Addr.IsValid() && s.Key == "" {
			return fmt.Errorf("balance: consistent: server %d (%s) has no address to hash", i, s.Name)
		}
		id := s.ident()
		if j, dup := seen[id]; dup {
			return fmt.Errorf("balance: consistent: servers %d (%s) and %d (%s) share address %v: their points would coincide",
				j, servers[j].Name, i, s.Name, id)
		}
		seen[id] = i
		for j := range s.effective() * PointsPerWeight / WeightScale {
			pts = append(pts, point{s.hashPoint(j), int32(i)})
		}
	}
	// Ties between two servers' points (2^-64 each) are broken by address,
	// not index, so that even they do not depend on declaration order.
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return strings.Compare(servers[a.srv].ident(), servers[b.srv].ident())
	})
	c.all = ring{hash: make([]uint64, len(pts)), owner: make([]int32, len(pts))}
	for k, pt := range pts {
		c.all.hash[k], c.all.owner[k] = pt.h, pt.srv
	}
	c.start(c.filter)
	return nil
}

// filter publishes the ring of the tier's servers, a subsequence of all.
func (c *consistent) filter(tier []int32) {
	in := make([]bool, len(c.servers))
	n := 0
	for _, i := range tier {
		in[i] = true
		n += c.servers[i].effective() * PointsPerWeight / WeightScale
	}
	r := &ring{hash: make([]uint64, 0, n), owner: make([]int32, 0, n), servers: len(tier)}
	for k, o := range c.all.owner {
		if in[o] {
			r.hash = append(r.hash, c.all.hash[k])
			r.owner = append(r.owner, o)
		}
	}
	c.ring.Store(r)
}

func (c *consistent) Pick(client netip.Addr, avoid int) (int, bool) {
	r := c.ring.Load()
	n := len(r.hash)
	if n == 0 {
		return -1, false
	}
	h := hashClient(client)
	// First k with hash[k] >= h (sort.Search, written out: no closure).
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.hash[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == n {
		lo = 0 // wrap around
	}
	// Redispatch walks on to the next point with another owner, as a client
	// of a removed server would go: the retry lands where it would land if
	// the avoided server were down.
	skip := skipping(avoid, r.servers)
	for int(r.owner[lo]) == skip {
		if lo++; lo == n {
			lo = 0
		}
	}
	return int(r.owner[lo]), true
}
