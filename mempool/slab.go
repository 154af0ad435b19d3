package mempool

// Slab is a fixed array of T with a free list of slot indexes. Slots are
// handed out and returned by index, so holders can refer to them in 32 bits
// (a completion's user_data) without a pointer.
type Slab[T any] struct {
	items []T
	free  []uint32 // stack of free slot indexes
}

// NewSlab makes a slab of n slots, all free.
func NewSlab[T any](n int) *Slab[T] {
	s := &Slab[T]{items: make([]T, n), free: make([]uint32, n)}
	for i := range s.free {
		// Lowest index on top, so a quiet proxy reuses a few hot slots.
		s.free[i] = uint32(n - 1 - i)
	}
	return s
}

// Get takes a free slot. ok is false when every slot is in use.
func (s *Slab[T]) Get() (idx uint32, item *T, ok bool) {
	n := len(s.free)
	if n == 0 {
		return 0, nil, false
	}
	idx = s.free[n-1]
	s.free = s.free[:n-1]
	return idx, &s.items[idx], true
}

// Put returns slot idx. The caller resets the item's state; the slab keeps
// the memory as it is so a generation counter in T survives reuse.
func (s *Slab[T]) Put(idx uint32) {
	s.free = append(s.free, idx) // never grows: at most len(items) entries
}

// At is slot idx, in use or not. idx must be below Cap.
func (s *Slab[T]) At(idx uint32) *T { return &s.items[idx] }

// Cap is the number of slots.
func (s *Slab[T]) Cap() int { return len(s.items) }

// InUse is the number of slots handed out.
func (s *Slab[T]) InUse() int { return len(s.items) - len(s.free) }
