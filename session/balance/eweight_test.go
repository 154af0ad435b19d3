package balance

import (
	"strings"
	"testing"
)

// warming returns servers of weight 100 each, the last one at eweight.
func warming(n, eweight int) []Server {
	s := servers(make100(n)...)
	s[n-1].Eweight = eweight
	return s
}

func make100(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 100
	}
	return w
}

// TestEweightSharesRamp: the algorithms that ramp give a warming server
// the share of its effective weight, and the same share as before at
// Eweight 0 or its full Weight×WeightScale.
func TestEweightSharesRamp(t *testing.T) {
	const n = 40000
	tol := map[string]float64{"roundrobin": 0.001, "random": 0.01, "consistent": 0.02, "leastconn": 0.001}
	for _, algo := range []string{"roundrobin", "random", "consistent", "leastconn"} {
		t.Run(algo, func(t *testing.T) {
			if !Ramps(algo) {
				t.Fatalf("Ramps(%q) = false", algo)
			}
			for _, ew := range []int{100, 400, 1600, 0} { // 1/16, 1/4, full, full
				var c counter
				var load Load
				if algo == "leastconn" || algo == "random" {
					c = make(counter, 3) // sessions held: shares follow the weights
					load = c.load
				}
				b := mustNew(t, algo, warming(3, ew), load)
				got := pickN(t, b, 3, n, c)
				share := ew
				if ew == 0 {
					share = 1600
				}
				checkShares(t, got, []int{1600, 1600, share}, n, tol[algo])
			}
		})
	}
}

// TestEweightStaticIgnored: static-rr, source and first do not ramp;
// their picks are the same whatever Eweight says.
func TestEweightStaticIgnored(t *testing.T) {
	for _, algo := range []string{"static-rr", "source", "first"} {
		if Ramps(algo) {
			t.Errorf("Ramps(%q) = true", algo)
		}
		full, warm := mustNew(t, algo, warming(3, 0), nil), mustNew(t, algo, warming(3, 1), nil)
		for k := range 3000 {
			a, _ := full.Pick(client(k), -1)
			b, _ := warm.Pick(client(k), -1)
			if a != b {
				t.Fatalf("%s: pick %d went to %d at full weight, %d warming", algo, k, a, b)
			}
		}
	}
}

// TestEweightConsistentOnlyGains: as a server warms up on a hash ring,
// the clients that change server all move to it: nobody else's clients
// are reshuffled, and at full weight it owns what it owns without slow
// start.
func TestEweightConsistentOnlyGains(t *testing.T) {
	const clients = 20000
	prev := mustNew(t, "consistent", warming(4, 1), nil)
	for _, ew := range []int{16, 200, 800, 1599, 1600} {
		next := mustNew(t, "consistent", warming(4, ew), nil)
		for k := range clients {
			a, _ := prev.Pick(client(k), -1)
			b, _ := next.Pick(client(k), -1)
			if a != b && b != 3 {
				t.Fatalf("eweight %d: client %d moved from %d to %d, not to the warming server", ew, k, a, b)
			}
		}
		prev = next
	}
	full := mustNew(t, "consistent", warming(4, 0), nil)
	for k := range clients {
		a, _ := prev.Pick(client(k), -1)
		b, _ := full.Pick(client(k), -1)
		if a != b {
			t.Fatalf("client %d: server %d at eweight 1600, %d without", k, a, b)
		}
	}
}

func TestEweightRefused(t *testing.T) {
	for _, ew := range []int{-1, 1601} {
		_, err := New("roundrobin", warming(2, ew), nil)
		if err == nil || !strings.Contains(err.Error(), "effective weight") {
			t.Errorf("eweight %d: err %v, want effective weight out of range", ew, err)
		}
	}
}
