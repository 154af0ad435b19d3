package session

import (
	"net/netip"
	"slices"
	"testing"

	"ringproxy/session/resolve"
)

// A slot keeps a target the answer still has; new targets take the free
// slots lowest first; targets beyond the slots are left out.
func TestFillSlots(t *testing.T) {
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	ts := func(addrs ...string) []resolve.Target {
		var out []resolve.Target
		for _, a := range addrs {
			out = append(out, resolve.Target{Addr: ap(a)})
		}
		return out
	}
	none := netip.AddrPort{}
	for _, c := range []struct {
		name string
		cur  []netip.AddrPort
		ts   []resolve.Target
		want []int
	}{
		{"empty slots fill in order", []netip.AddrPort{none, none, none}, ts("10.0.0.1:80", "10.0.0.2:80"), []int{0, 1, -1}},
		{"kept where they are", []netip.AddrPort{ap("10.0.0.2:80"), none, ap("10.0.0.1:80")}, ts("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"), []int{1, 2, 0}},
		{"a gone target frees its slot", []netip.AddrPort{ap("10.0.0.1:80"), ap("10.0.0.2:80")}, ts("10.0.0.2:80"), []int{-1, 0}},
		{"more targets than slots", []netip.AddrPort{none}, ts("10.0.0.1:80", "10.0.0.2:80"), []int{0}},
		{"no answer", []netip.AddrPort{ap("10.0.0.1:80")}, nil, []int{-1}},
	} {
		if got := fillSlots(c.cur, c.ts); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
