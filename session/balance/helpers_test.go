package balance

import (
	"math"
	"net/netip"
	"sync/atomic"
	"testing"
)

// servers returns one server per weight, at 10.0.0.<i+1>:8080, all primaries.
func servers(weights ...int) []Server {
	s := make([]Server, len(weights))
	for i, w := range weights {
		s[i] = Server{
			Name:   string(rune('a' + i)),
			Addr:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i + 1)}), 8080),
			Weight: w,
		}
	}
	return s
}

func mustNew(t testing.TB, algo string, s []Server, load Load) Balancer {
	t.Helper()
	b, err := New(algo, s, load)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := b.(*random); ok {
		r.rng.state.Store(42) // reproducible draws in tests
	}
	return b
}

// client returns the i-th test client: IPv4 for even i, IPv6 for odd i, so
// every spread test covers both families.
func client(i int) netip.Addr {
	if i%2 == 0 {
		return netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	}
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
}

var anyClient = netip.MustParseAddr("192.0.2.1")

// counter is a fake Load over per-server session counts.
type counter []atomic.Int64

func (c counter) load(i int) int64 { return c[i].Load() }

// loads returns a constant fake Load.
func loads(l ...int64) Load { return func(i int) int64 { return l[i] } }

// pickN makes n picks (client(k) for pick k, no avoid), adding each pick to
// c when c is not nil (sessions that never end), and returns per-server counts.
func pickN(t testing.TB, b Balancer, nservers, n int, c counter) []int {
	t.Helper()
	got := make([]int, nservers)
	for k := range n {
		i, ok := b.Pick(client(k), -1)
		if !ok {
			t.Fatalf("pick %d: nothing usable", k)
		}
		got[i]++
		if c != nil {
			c[i].Add(1)
		}
	}
	return got
}

// checkShares fails if any server's share of n picks is further than tol
// (a fraction of n) from its weight's share, and returns the largest
// deviation seen, as a fraction of n, for the record.
func checkShares(t testing.TB, got []int, weights []int, n int, tol float64) float64 {
	t.Helper()
	total := 0
	for _, w := range weights {
		total += w
	}
	worst := 0.0
	for i, w := range weights {
		want := float64(n) * float64(w) / float64(total)
		dev := math.Abs(float64(got[i])-want) / float64(n)
		worst = max(worst, dev)
		if dev > tol {
			t.Errorf("server %d (weight %d): %d picks, want %.0f ± %.0f", i, w, got[i], want, tol*float64(n))
		}
	}
	t.Logf("counts %v for weights %v: worst deviation %.3f%% of %d picks (tolerance %.1f%%)", got, weights, worst*100, n, tol*100)
	return worst
}
