package session

import (
	"math/rand"
	"sort"
	"testing"
)

func TestTimerHeapOrdersAndMoves(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	ss := make([]Session, 200)
	th := newTimerHeap(len(ss))
	for i := range ss {
		ss[i].heapIdx = -1
		th.set(&ss[i], rng.Int63n(1000))
	}
	// Move some later, some earlier, remove some.
	for i := 0; i < 100; i++ {
		s := &ss[rng.Intn(len(ss))]
		if s.heapIdx >= 0 && i%3 == 0 {
			th.remove(s)
			continue
		}
		th.set(s, rng.Int63n(1000))
	}
	var want []int64
	for i := range ss {
		if ss[i].heapIdx >= 0 {
			want = append(want, ss[i].timerAt)
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	for i, w := range want {
		s := th.peek()
		if s == nil || s.timerAt != w {
			t.Fatalf("pop %d: got %v, want key %d", i, s, w)
		}
		th.remove(s)
		if s.heapIdx != -1 {
			t.Fatalf("removed session keeps heapIdx %d", s.heapIdx)
		}
	}
	if th.len() != 0 {
		t.Fatalf("heap not empty: %d", th.len())
	}
}

func TestTimerHeapAllocatesNothing(t *testing.T) {
	ss := make([]Session, 64)
	th := newTimerHeap(len(ss))
	for i := range ss {
		ss[i].heapIdx = -1
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		s := &ss[i%len(ss)]
		th.set(s, int64(i*7919%1000))
		if i%5 == 0 {
			th.remove(s)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("timer heap allocates %.1f per op", allocs)
	}
}
