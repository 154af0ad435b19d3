package session

import (
	"net/netip"
	"sync"
	"time"
)

// freqCtr counts events per second over a sliding window of two periods,
// as HAProxy's freq_ctr does: the estimate is this second's count plus
// last second's, weighted by how much of it still lies within the last
// 1000 ms. Shared by the workers of a frontend, touched once per accept.
type freqCtr struct {
	mu        sync.Mutex
	period    int64 // current second (monotonic ns / 1e9)
	cur, prev int
}

const second = int64(time.Second)

// take counts one event if the rate stays within limit, or says how long
// to wait before trying again.
func (f *freqCtr) take(now int64, limit int) (ok bool, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roll(now)
	elapsed := now - f.period*second
	est := f.cur + int(int64(f.prev)*(second-elapsed)/second)
	if est < limit {
		f.cur++
		return true, 0
	}
	if f.prev == 0 || est-f.prev >= limit {
		return false, time.Duration(second - elapsed) // only the next period helps
	}
	return false, time.Duration(second/int64(limit)) + time.Millisecond
}

func (f *freqCtr) roll(now int64) {
	p := now / second
	switch {
	case p == f.period:
	case p == f.period+1:
		f.period, f.prev, f.cur = p, f.cur, 0
	default:
		f.period, f.prev, f.cur = p, 0, 0
	}
}

// sourceRates is a bounded table of per-source connection rates, shared
// by the workers: 2-way set associative, so a new source evicts the
// least recently counted of its two candidate slots and memory never grows.
type sourceRates struct {
	mu    sync.Mutex
	slots []sourceSlot
}

type sourceSlot struct {
	addr netip.Addr
	ctr  freqCtr // its mutex is unused: the table's lock covers it
}

const sourceSlots = 1 << 14

func newSourceRates() *sourceRates { return &sourceRates{slots: make([]sourceSlot, sourceSlots)} }

// take counts a connection from a and says whether a stays within limit
// per second.
func (t *sourceRates) take(a netip.Addr, now int64, limit int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := int(hashAddr(a) & (sourceSlots - 2)) // even index: the pair i, i+1
	s := &t.slots[i]
	if s.addr != a {
		s = &t.slots[i+1]
		if s.addr != a {
			s = t.older(i)
			*s = sourceSlot{addr: a}
		}
	}
	s.ctr.roll(now)
	elapsed := now - s.ctr.period*second
	if s.ctr.cur+int(int64(s.ctr.prev)*(second-elapsed)/second) >= limit {
		return false
	}
	s.ctr.cur++
	return true
}

func (t *sourceRates) older(i int) *sourceSlot {
	a, b := &t.slots[i], &t.slots[i+1]
	if !a.addr.IsValid() || (b.addr.IsValid() && a.ctr.period <= b.ctr.period) {
		return a
	}
	return b
}

// hashAddr is FNV-1a over the 16-byte form: fixed, allocation-free.
func hashAddr(a netip.Addr) uint64 {
	b := a.Unmap().As16()
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}
