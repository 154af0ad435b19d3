package balance

import (
	"net/netip"
	"slices"
	"testing"
)

const ringClients = 100000

// mapping returns the server of each of the test clients.
func mapping(b Balancer) []int {
	m := make([]int, ringClients)
	for k := range m {
		m[k], _ = b.Pick(client(k), -1)
	}
	return m
}

// TestConsistentRemap: removing one of N servers moves only that server's
// clients (about 1/N of them, at most 1.5/N), and putting it back restores
// every client's server. Every server is removed in turn, with N = 4 and 10
// (under -race, only the first and the last, to keep the run short).
func TestConsistentRemap(t *testing.T) {
	for _, n := range []int{4, 10} {
		weights := make([]int, n)
		for i := range weights {
			weights[i] = 100 // the configuration's default weight
		}
		b := mustNew(t, "consistent", servers(weights...), nil)
		base := mapping(b)
		worst := 0.0
		for gone := range n {
			if raceEnabled && gone != 0 && gone != n-1 {
				continue
			}
			b.SetUsable(gone, false)
			moved := 0
			for k, i := range mapping(b) {
				if i == base[k] {
					continue
				}
				moved++
				if base[k] != gone {
					t.Fatalf("N=%d, server %d removed: client %d moved from %d to %d", n, gone, k, base[k], i)
				}
			}
			frac := float64(moved) / ringClients
			worst = max(worst, frac)
			if frac > 1.5/float64(n) {
				t.Errorf("N=%d, server %d removed: %.2f%% of clients moved, want ≤ 1.5/N = %.2f%%", n, gone, 100*frac, 150/float64(n))
			}
			b.SetUsable(gone, true)
			if !slices.Equal(mapping(b), base) {
				t.Fatalf("N=%d: server %d back, mapping not restored", n, gone)
			}
		}
		t.Logf("N=%d: worst removal moved %.2f%% of %d clients (1/N = %.2f%%, limit %.2f%%)", n, 100*worst, ringClients, 100/float64(n), 150/float64(n))
	}
}

// TestConsistentDistribution: 100,000 clients over weights {100, 50, 25}
// (1600/800/400 points): within 3% of the picks (the brief allows 5%).
func TestConsistentDistribution(t *testing.T) {
	weights := []int{100, 50, 25}
	got := pickN(t, mustNew(t, "consistent", servers(weights...), nil), 3, ringClients, nil)
	checkShares(t, got, weights, ringClients, 0.03)
}

// TestConsistentOrderFree: two proxies listing the same servers in
// different orders send every client to the same address.
func TestConsistentOrderFree(t *testing.T) {
	s := servers(100, 50, 25, 100, 10)
	r := slices.Clone(s)
	slices.Reverse(r)
	a, b := mustNew(t, "consistent", s, nil), mustNew(t, "consistent", r, nil)
	for k := range 10000 {
		i, _ := a.Pick(client(k), -1)
		j, _ := b.Pick(client(k), -1)
		if s[i].Addr != r[j].Addr {
			t.Fatalf("client %v: %v vs %v", client(k), s[i].Addr, r[j].Addr)
		}
	}
}

// TestConsistentAvoidIsRemoval: redispatching away from a server lands
// where the client would go if that server were down.
func TestConsistentAvoidIsRemoval(t *testing.T) {
	a := mustNew(t, "consistent", servers(100, 100, 100, 100), nil)
	down := mustNew(t, "consistent", servers(100, 100, 100, 100), nil)
	down.SetUsable(2, false)
	for k := range 10000 {
		i, _ := a.Pick(client(k), 2)
		j, _ := down.Pick(client(k), -1)
		if i != j {
			t.Fatalf("client %v: avoid 2 → %d, 2 down → %d", client(k), i, j)
		}
	}
}

// TestConsistentPorts: servers on one host, told apart by port, get their
// own points.
func TestConsistentPorts(t *testing.T) {
	s := servers(100, 100, 100)
	for i := range s {
		s[i].Addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(8001+i))
	}
	got := pickN(t, mustNew(t, "consistent", s, nil), 3, 30000, nil)
	checkShares(t, got, []int{1, 1, 1}, 30000, 0.05)
}
