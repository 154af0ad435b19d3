package balance

import (
	"strings"
	"testing"
)

// sequenceOf returns n picks as letters (server 0 = 'a').
func sequenceOf(t *testing.T, b Balancer, n int) string {
	t.Helper()
	var sb strings.Builder
	for k := range n {
		i, ok := b.Pick(client(k), -1)
		if !ok {
			t.Fatal("nothing usable")
		}
		sb.WriteByte(byte('a' + i))
	}
	return sb.String()
}

// longestRun is the longest stretch of one letter in seq.
func longestRun(seq string) int {
	best, run := 0, 0
	for k := range len(seq) {
		if k > 0 && seq[k] == seq[k-1] {
			run++
		} else {
			run = 1
		}
		best = max(best, run)
	}
	return best
}

func TestRoundRobinSmooth(t *testing.T) {
	b := mustNew(t, "roundrobin", servers(5, 1, 1), nil)
	seq := sequenceOf(t, b, 700)
	if want := strings.Repeat("aabacaa", 100); seq != want {
		t.Errorf("sequence %.21s..., want nginx's %.21s...", seq, want)
	}
	// ceil(w_max/w_min) = 5; across cycles SWRR does better (4: "aa|aa").
	if r := longestRun(seq); r > 5 {
		t.Errorf("longest run %d, want ≤ 5", r)
	}
}

func TestStaticRRSmooth(t *testing.T) {
	for _, weights := range [][]int{{5, 1, 1}, {100, 50, 25}, {3, 2}, {7, 7, 1}, {256, 1}} {
		s := servers(weights...)
		b := mustNew(t, "static-rr", s, nil)
		q := b.(*staticRR).seq.Load()
		total := 0
		for _, w := range weights {
			total += w
		}
		// Every prefix of the cycle holds each server within one entry of
		// its exact share.
		seen := make([]int, len(weights))
		for k, i := range q.order {
			seen[i]++
			for j, w := range weights {
				exact := float64(k+1) * float64(w) / float64(total)
				if d := float64(seen[j]) - exact; d > 1 || d < -1 {
					t.Fatalf("weights %v: after %d entries server %d has %d, exact share %.2f", weights, k+1, j, seen[j], exact)
				}
			}
		}
		wmax, wmin := weights[0], weights[0]
		for _, w := range weights {
			wmax, wmin = max(wmax, w), min(wmin, w)
		}
		limit := (wmax + wmin - 1) / wmin
		if r := longestRun(sequenceOf(t, b, 3*len(q.order))); r > limit {
			t.Errorf("weights %v: longest run %d, want ≤ ceil(%d/%d) = %d", weights, r, wmax, wmin, limit)
		}
	}
}

func TestStaticRRGCD(t *testing.T) {
	b := mustNew(t, "static-rr", servers(100, 50, 25), nil)
	if q := b.(*staticRR).seq.Load(); len(q.order) != 7 {
		t.Errorf("sequence of %d entries, want 7 (weights divided by their gcd 25)", len(q.order))
	}
}

// TestRRDistribution: 10,000 picks over weights {100, 50, 25}. Both are
// exact up to the position in the current cycle: tolerance 0.1% of picks
// (the brief allows 2%).
func TestRRDistribution(t *testing.T) {
	weights := []int{100, 50, 25}
	for _, algo := range []string{"roundrobin", "static-rr"} {
		t.Run(algo, func(t *testing.T) {
			got := pickN(t, mustNew(t, algo, servers(weights...), nil), 3, 10000, nil)
			checkShares(t, got, weights, 10000, 0.001)
		})
	}
}

func TestRRDownServerSkipped(t *testing.T) {
	for _, algo := range []string{"roundrobin", "static-rr"} {
		t.Run(algo, func(t *testing.T) {
			b := mustNew(t, algo, servers(2, 1, 1), nil)
			b.SetUsable(0, false)
			if got := pickN(t, b, 3, 100, nil); got[0] != 0 || got[1] != 50 || got[2] != 50 {
				t.Errorf("server 0 down: %v", got)
			}
			b.SetUsable(0, true)
			if got := pickN(t, b, 3, 400, nil); got[0] != 200 || got[1] != 100 || got[2] != 100 {
				t.Errorf("server 0 back: %v", got)
			}
		})
	}
}
