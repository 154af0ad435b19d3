package balance

import (
	"slices"
	"testing"
)

func TestFirstFillsInOrder(t *testing.T) {
	s := servers(1, 1, 1)
	s[0].MaxConn, s[1].MaxConn, s[2].MaxConn = 2, 3, 0
	c := make(counter, 3)
	b := mustNew(t, "first", s, c.load)
	var seq []int
	for range 8 {
		i, _ := b.Pick(anyClient, -1)
		c[i].Add(1)
		seq = append(seq, i)
	}
	if want := []int{0, 0, 1, 1, 1, 2, 2, 2}; !slices.Equal(seq, want) {
		t.Errorf("picks %v, want %v", seq, want)
	}
	// A session ending on server 0 frees its slot: it is first again.
	c[0].Add(-1)
	if i, _ := b.Pick(anyClient, -1); i != 0 {
		t.Errorf("after a release on 0: got %d", i)
	}
}

// TestFirstAllFull: when every server is full, the first usable server is
// returned and the caller's queue takes the overflow.
func TestFirstAllFull(t *testing.T) {
	s := servers(1, 1, 1)
	for i := range s {
		s[i].MaxConn = 1
	}
	b := mustNew(t, "first", s, loads(1, 1, 1))
	if i, ok := b.Pick(anyClient, -1); !ok || i != 0 {
		t.Errorf("all full: got %d, %v; want 0", i, ok)
	}
	if i, _ := b.Pick(anyClient, 0); i != 1 {
		t.Errorf("all full, avoid 0: got %d, want 1", i)
	}
	b.SetUsable(0, false)
	if i, _ := b.Pick(anyClient, -1); i != 1 {
		t.Errorf("all full, 0 down: got %d, want 1", i)
	}
}

func TestFirstUnlimited(t *testing.T) {
	b := mustNew(t, "first", servers(1, 1), loads(1<<40, 0))
	if got := pickN(t, b, 2, 100, nil); got[0] != 100 {
		t.Errorf("MaxConn 0 is never full: %v", got)
	}
}
