package balance

import "testing"

// TestRandomDistribution: over weights {100, 50, 25}, idle servers (every
// draw ties, the first one wins) take sessions by weight within 2%; with
// sessions that never end, loads steer the choice and shares track the
// weights within 1%. (The brief allows 5%.)
func TestRandomDistribution(t *testing.T) {
	weights := []int{100, 50, 25}
	got := pickN(t, mustNew(t, "random", servers(weights...), nil), 3, 10000, nil)
	checkShares(t, got, weights, 10000, 0.02)

	c := make(counter, 3)
	got = pickN(t, mustNew(t, "random", servers(weights...), c.load), 3, 10000, c)
	checkShares(t, got, weights, 10000, 0.01)
}

// TestRandomPrefersLessLoaded: with one server far more loaded, it wins
// only when both draws land on it: 1/9 of picks for three equal weights.
func TestRandomPrefersLessLoaded(t *testing.T) {
	b := mustNew(t, "random", servers(1, 1, 1), loads(1000, 0, 0))
	got := pickN(t, b, 3, 9000, nil)
	t.Logf("loads {1000, 0, 0}: counts %v", got)
	if got[0] > 1300 || got[0] < 700 {
		t.Errorf("loaded server got %d of 9000, want about 1000", got[0])
	}
	// Relative to weight: 300 sessions on weight 100 (3/session unit) is
	// lighter than 10 on weight 1: server 1 wins only when drawn twice,
	// (1/101)² of picks.
	b = mustNew(t, "random", servers(100, 1), loads(300, 10))
	got = pickN(t, b, 2, 10000, nil)
	if got[1] > 10 {
		t.Errorf("weights {100, 1} loads {300, 10}: %v, want about 1 pick on server 1", got)
	}
}

// TestRandomAvoidKeepsOdds: avoiding a server leaves the others' odds in
// proportion to their weights.
func TestRandomAvoidKeepsOdds(t *testing.T) {
	b := mustNew(t, "random", servers(25, 100, 50), nil)
	got := make([]int, 3)
	for k := range 10000 {
		i, _ := b.Pick(client(k), 1)
		got[i]++
	}
	checkShares(t, []int{got[0], got[2]}, []int{25, 50}, 10000, 0.02)
}

func TestWyrandDistinct(t *testing.T) {
	var r wyrand
	seen := make(map[uint64]bool)
	for range 100000 {
		v := r.next()
		if seen[v] {
			t.Fatalf("repeated %#x", v)
		}
		seen[v] = true
	}
}
