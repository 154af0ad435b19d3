package session

import (
	"net/netip"
	"testing"
)

func TestAllowedMatchesMappedIPv4(t *testing.T) {
	f := &frontend{cfg: &Frontend{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	if !f.allowed(netip.MustParseAddr("::ffff:10.1.2.3")) {
		t.Fatal("a 4-in-6 client inside an IPv4 allow prefix was refused")
	}
	if f.allowed(netip.MustParseAddr("11.0.0.1")) {
		t.Fatal("a client outside allow was let in")
	}
}
