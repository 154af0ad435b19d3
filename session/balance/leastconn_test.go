package balance

import "testing"

func TestLeastConnPicksLeastLoadedByWeight(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		loads   []int64
		want    int
	}{
		{[]int{1, 1, 1}, []int64{10, 0, 5}, 1},
		{[]int{1, 1, 1}, []int64{3, 4, 2}, 2},
		// (l+1)/w: 51/100 = 0.51 > 5/10 = 0.5 → server 1.
		{[]int{100, 10}, []int64{50, 4}, 1},
		// 41/100 = 0.41 < 0.5 → server 0.
		{[]int{100, 10}, []int64{40, 4}, 0},
		// Idle servers: the +1 makes the heavier one win.
		{[]int{1, 100}, []int64{0, 0}, 1},
		// A negative count (accounting slip) reads as 0.
		{[]int{1, 1}, []int64{1, -5}, 1},
	} {
		b := mustNew(t, "leastconn", servers(tc.weights...), loads(tc.loads...))
		for k := range 10 {
			if i, ok := b.Pick(client(k), -1); !ok || i != tc.want {
				t.Errorf("weights %v loads %v: got %d, want %d", tc.weights, tc.loads, i, tc.want)
				break
			}
		}
	}
}

func TestLeastConnTiesRotate(t *testing.T) {
	// Constant equal loads: every pick is a 4-way tie, taken in turns.
	b := mustNew(t, "leastconn", servers(10, 10, 10, 10), loads(3, 3, 3, 3))
	if got := pickN(t, b, 4, 400, nil); got[0] != 100 || got[1] != 100 || got[2] != 100 || got[3] != 100 {
		t.Errorf("ties: %v, want 100 each", got)
	}
	// Ties among the best two only; the loaded one is never picked.
	b = mustNew(t, "leastconn", servers(10, 10, 10), loads(1, 9, 1))
	if got := pickN(t, b, 3, 300, nil); got[1] != 0 || got[0] < 100 || got[2] < 100 {
		t.Errorf("two-way ties: %v", got)
	}
}

// TestLeastConnDistribution: sessions that never end, so loads follow the
// picks; shares then track the weights within 0.1% of 10,000 picks.
func TestLeastConnDistribution(t *testing.T) {
	weights := []int{100, 50, 25}
	c := make(counter, 3)
	got := pickN(t, mustNew(t, "leastconn", servers(weights...), c.load), 3, 10000, c)
	checkShares(t, got, weights, 10000, 0.001)
}
