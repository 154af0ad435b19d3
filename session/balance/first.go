package balance

import (
	"net/netip"
	"sync/atomic"
)

// first fills servers in declaration order: a new session goes to the first
// candidate with a free slot (load < MaxConn; MaxConn 0 is never full), so
// the last servers stay idle and can be stopped when load is low (HAProxy's
// "first"). Weights only matter as 0 = no new sessions.
//
// When every candidate is full, Pick still returns the first one (the first
// usable, not avoided): the caller's per-server queueing (maxconn, timeout
// queue) absorbs the overflow, as HAProxy queues on the backend.
type first struct {
	pool
	tierIdx atomic.Pointer[[]int32]
}

func (f *first) init(servers []Server, load Load) error {
	f.setup(servers, load)
	f.start(func(tier []int32) { f.tierIdx.Store(&tier) })
	return nil
}

func (f *first) Pick(_ netip.Addr, avoid int) (int, bool) {
	tier := *f.tierIdx.Load()
	skip := skipping(avoid, len(tier))
	fallback := -1
	for _, i := range tier {
		if int(i) == skip {
			continue
		}
		if fallback < 0 {
			fallback = int(i)
		}
		if mc := f.servers[i].MaxConn; mc == 0 || f.loadOf(i) < int64(mc) {
			return int(i), true
		}
	}
	return fallback, fallback >= 0
}
