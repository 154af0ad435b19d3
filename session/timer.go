package session

// timerHeap is a worker's min-heap of sessions keyed by Session.timerAt.
// A session is in it at most once (heapIdx >= 0). Activity that only
// pushes a deadline later does not touch the heap: the key stays early,
// and when it fires the session's real deadline is recomputed and the
// entry moved. So forwarding a buffer costs no heap work.
type timerHeap struct {
	h []*Session // capacity fixed at start: one entry per slab slot
}

func newTimerHeap(n int) timerHeap { return timerHeap{h: make([]*Session, 0, n)} }

func (t *timerHeap) len() int { return len(t.h) }

// peek is the session with the earliest key, or nil.
func (t *timerHeap) peek() *Session {
	if len(t.h) == 0 {
		return nil
	}
	return t.h[0]
}

// set puts s in the heap with key at, or moves it there.
func (t *timerHeap) set(s *Session, at int64) {
	if s.heapIdx < 0 {
		s.timerAt = at
		s.heapIdx = int32(len(t.h))
		t.h = append(t.h, s)
		t.up(int(s.heapIdx))
		return
	}
	old := s.timerAt
	s.timerAt = at
	if at < old {
		t.up(int(s.heapIdx))
	} else {
		t.down(int(s.heapIdx))
	}
}

// remove takes s out of the heap if it is there.
func (t *timerHeap) remove(s *Session) {
	i := int(s.heapIdx)
	if i < 0 {
		return
	}
	last := len(t.h) - 1
	t.swap(i, last)
	t.h[last] = nil
	t.h = t.h[:last]
	s.heapIdx = -1
	if i < last {
		t.down(i)
		t.up(i)
	}
}

func (t *timerHeap) less(i, j int) bool { return t.h[i].timerAt < t.h[j].timerAt }

func (t *timerHeap) swap(i, j int) {
	t.h[i], t.h[j] = t.h[j], t.h[i]
	t.h[i].heapIdx = int32(i)
	t.h[j].heapIdx = int32(j)
}

func (t *timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *timerHeap) down(i int) {
	n := len(t.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.less(r, l) {
			m = r
		}
		if !t.less(m, i) {
			return
		}
		t.swap(i, m)
		i = m
	}
}
