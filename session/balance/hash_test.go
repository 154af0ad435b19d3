package balance

import (
	"hash/fnv"
	"net/netip"
	"testing"
)

// TestHashGolden pins the hash: it is a format shared by independent
// proxies, and changing it remaps every client.
func TestHashGolden(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want uint64
	}{
		{"192.0.2.1", 0x97f48f4f11a0ff40},
		{"2001:db8::1", 0x8dec2b2d0b0e530f},
	} {
		if got := hashClient(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("hashClient(%s) = %#x, want %#x", tc.addr, got, tc.want)
		}
	}
	if got, want := hashPoint(netip.MustParseAddrPort("10.0.0.1:8080"), 7), uint64(0x4927ae1784d39b3a); got != want {
		t.Errorf("hashPoint = %#x, want %#x", got, want)
	}
}

// TestFNV checks the hand-written FNV-1a against hash/fnv.
func TestFNV(t *testing.T) {
	for _, in := range []string{"", "a", "ringproxy", "\x00\xff\x10"} {
		h := fnv.New64a()
		h.Write([]byte(in))
		if got, want := fnv1a(fnvOffset, []byte(in)), h.Sum64(); got != want {
			t.Errorf("fnv1a(%q) = %#x, want %#x", in, got, want)
		}
	}
}

func TestSourceSticky(t *testing.T) {
	b := mustNew(t, "source", servers(100, 50, 25, 1), nil)
	for _, a := range []string{"192.0.2.1", "198.51.100.77", "2001:db8::1", "2001:db8:ffff::42"} {
		addr := netip.MustParseAddr(a)
		first, _ := b.Pick(addr, -1)
		for range 1000 {
			if i, _ := b.Pick(addr, -1); i != first {
				t.Fatalf("%s: got %d after %d", a, i, first)
			}
		}
	}
	// IPv4 and IPv4-mapped IPv6 are the same client.
	v4, mapped := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.1")
	i, _ := b.Pick(v4, -1)
	j, _ := b.Pick(mapped, -1)
	if i != j {
		t.Errorf("%v → %d but %v → %d", v4, i, mapped, j)
	}
}

// TestSourceDistribution: 10,000 distinct clients (half IPv4, half IPv6)
// over weights {100, 50, 25}: within 2% of the picks (binomial σ ≈ 0.5%).
func TestSourceDistribution(t *testing.T) {
	weights := []int{100, 50, 25}
	got := pickN(t, mustNew(t, "source", servers(weights...), nil), 3, 10000, nil)
	checkShares(t, got, weights, 10000, 0.02)
	// Sequential clients too, IPv4 only: a /16 must not pile onto one server.
	b := mustNew(t, "source", servers(1, 1, 1, 1, 1, 1, 1, 1), nil)
	per := make([]int, 8)
	for k := range 8000 {
		i, _ := b.Pick(netip.AddrFrom4([4]byte{10, 1, byte(k >> 8), byte(k)}), -1)
		per[i]++
	}
	checkShares(t, per, []int{1, 1, 1, 1, 1, 1, 1, 1}, 8000, 0.02)
}

// TestSourceStableWhileUnchanged: a server going down and coming back
// restores every client's server.
func TestSourceStableWhileUnchanged(t *testing.T) {
	b := mustNew(t, "source", servers(3, 2, 1), nil)
	before := make([]int, 1000)
	for k := range before {
		before[k], _ = b.Pick(client(k), -1)
	}
	b.SetUsable(1, false)
	b.SetUsable(1, true)
	for k, want := range before {
		if i, _ := b.Pick(client(k), -1); i != want {
			t.Fatalf("client %d: %d, was %d", k, i, want)
		}
	}
}
