package proxyproto

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestAppendV1(t *testing.T) {
	zero := netip.AddrPort{}
	for _, tc := range []struct {
		src, dst netip.AddrPort
		want     string
	}{
		{ap("1.2.3.4:1111"), ap("5.6.7.8:2222"), "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n"},
		{ap("0.0.0.0:0"), ap("255.255.255.255:65535"), "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"},
		{ap("[2001:db8::1]:1"), ap("[::1]:2"), "PROXY TCP6 2001:db8::1 ::1 1 2\r\n"},
		{ap("[" + ffff6 + "]:65535"), ap("[" + ffff6 + "]:65535"), "PROXY TCP6 " + ffff6 + " " + ffff6 + " 65535 65535\r\n"},
		// Both v4-mapped: plain IPv4.
		{ap("[::ffff:1.2.3.4]:1"), ap("[::ffff:5.6.7.8]:2"), "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"},
		// Mixed: IPv6 with the IPv4 end mapped.
		{ap("1.2.3.4:1"), ap("[2001:db8::2]:2"), "PROXY TCP6 ::ffff:1.2.3.4 2001:db8::2 1 2\r\n"},
		{ap("[2001:db8::1]:1"), ap("[::ffff:5.6.7.8]:2"), "PROXY TCP6 2001:db8::1 ::ffff:5.6.7.8 1 2\r\n"},
		// Zones cannot be sent.
		{ap("[fe80::1%eth0]:1"), ap("[fe80::2%eth0]:2"), "PROXY TCP6 fe80::1 fe80::2 1 2\r\n"},
		{zero, ap("1.2.3.4:1"), "PROXY UNKNOWN\r\n"},
		{ap("1.2.3.4:1"), zero, "PROXY UNKNOWN\r\n"},
	} {
		got := AppendV1([]byte("prefix:"), tc.src, tc.dst)
		if string(got) != "prefix:"+tc.want {
			t.Errorf("AppendV1(%v, %v) = %q, want %q", tc.src, tc.dst, got, tc.want)
		}
	}
}

func TestAppendV2(t *testing.T) {
	zero := netip.AddrPort{}
	for _, tc := range []struct {
		src, dst netip.AddrPort
		want     string
	}{
		{ap("1.2.3.4:1111"), ap("5.6.7.8:2222"), v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1111, 2222))},
		{ap("[2001:db8::1]:1"), ap("[::1]:2"), v2hdr(0x21, 0x21, addr6("2001:db8::1", "::1", 1, 2))},
		{ap("[::ffff:1.2.3.4]:1"), ap("[::ffff:5.6.7.8]:2"), v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2))},
		{ap("1.2.3.4:1"), ap("[2001:db8::2]:2"), v2hdr(0x21, 0x21, addr6("::ffff:1.2.3.4", "2001:db8::2", 1, 2))},
		{ap("[fe80::1%eth0]:1"), ap("[fe80::2%eth0]:2"), v2hdr(0x21, 0x21, addr6("fe80::1", "fe80::2", 1, 2))},
		{zero, zero, v2hdr(0x21, 0x00)},
	} {
		got := AppendV2([]byte("prefix:"), tc.src, tc.dst)
		if string(got) != "prefix:"+tc.want {
			t.Errorf("AppendV2(%v, %v) = %x, want %x", tc.src, tc.dst, got, tc.want)
		}
	}
	if got := AppendV2Local(nil); string(got) != v2hdr(0x20, 0x00) {
		t.Errorf("AppendV2Local = %x", got)
	}
}

func TestRoundTrip(t *testing.T) {
	pairs := [][2]netip.AddrPort{
		{ap("1.2.3.4:1111"), ap("5.6.7.8:2222")},
		{ap("0.0.0.0:0"), ap("255.255.255.255:65535")},
		{ap("[2001:db8::1]:1"), ap("[2001:db8::2]:65535")},
		{ap("[::]:0"), ap("[" + ffff6 + "]:65535")},
		{ap("1.2.3.4:1"), ap("[2001:db8::2]:2")},
		{ap("[2001:db8::1]:1"), ap("5.6.7.8:2")},
		{ap("[::ffff:1.2.3.4]:1"), ap("[::ffff:5.6.7.8]:2")},
		{ap("[::ffff:1.2.3.4]:1"), ap("[::1]:2")},
		{ap("[fe80::1%eth0]:1"), ap("[fe80::2%eth1]:2")},
	}
	for _, p := range pairs {
		for v, enc := range []func([]byte, netip.AddrPort, netip.AddrPort) []byte{AppendV1, AppendV2} {
			b := enc(nil, p[0], p[1])
			b = append(b, payload...)
			h, n, err := Parse(b)
			if err != nil {
				t.Fatalf("v%d %v: Parse(%q): %v", v+1, p, b, err)
			}
			if h.Version != v+1 || h.Command != Proxy || string(b[n:]) != payload {
				t.Fatalf("v%d %v: got %+v n=%d", v+1, p, h, n)
			}
			if !sameEndpoint(h.Src, p[0]) || !sameEndpoint(h.Dst, p[1]) {
				t.Fatalf("v%d %v: got %v → %v", v+1, p, h.Src, h.Dst)
			}
		}
	}
	// Local and unknown.
	for _, b := range [][]byte{AppendV1(nil, netip.AddrPort{}, netip.AddrPort{}), AppendV2(nil, netip.AddrPort{}, netip.AddrPort{}), AppendV2Local(nil)} {
		h, n, err := Parse(b)
		if err != nil || n != len(b) || h.Command != Local || h.Src.IsValid() || h.Dst.IsValid() {
			t.Fatalf("Parse(%q) = %+v, %d, %v", b, h, n, err)
		}
	}
}

// sameEndpoint compares what the wire can carry: unmapped, zoneless
// addresses and the port.
func sameEndpoint(got, want netip.AddrPort) bool {
	return got.Port() == want.Port() &&
		got.Addr().Unmap() == want.Addr().Unmap().WithZone("")
}

func TestAppendKeepsPrefix(t *testing.T) {
	buf := make([]byte, 3, 200)
	copy(buf, "abc")
	out := AppendV2(AppendV1(buf, ap("1.2.3.4:1"), ap("5.6.7.8:2")), ap("1.2.3.4:1"), ap("5.6.7.8:2"))
	if !bytes.HasPrefix(out, []byte("abcPROXY TCP4 ")) || &out[0] != &buf[0] {
		t.Fatalf("%q", out)
	}
	h, n, err := Parse(out[3:])
	if err != nil || h.Version != 1 {
		t.Fatal(err)
	}
	if h2, _, err := Parse(out[3+n:]); err != nil || h2.Version != 2 || h2.Src != h.Src {
		t.Fatal(err)
	}
}

// The authority TLV follows the addresses, the length covers it, and the
// header still parses to the same addresses, its whole length consumed.
func TestAppendV2Authority(t *testing.T) {
	for _, tc := range []struct{ src, dst netip.AddrPort }{
		{ap("1.2.3.4:1111"), ap("5.6.7.8:443")},
		{ap("[2001:db8::1]:1"), ap("[::1]:443")},
		{netip.AddrPort{}, ap("5.6.7.8:443")},
	} {
		name := []byte("a.example.com")
		plain := AppendV2(nil, tc.src, tc.dst)
		got := AppendV2Authority([]byte("x"), tc.src, tc.dst, name)[1:]
		tlv := append([]byte{TypeAuthority, 0, byte(len(name))}, name...)
		if !bytes.Equal(got[:V2HeaderLen-2], plain[:V2HeaderLen-2]) || !bytes.Equal(got[len(plain):], tlv) {
			t.Fatalf("%v: % x", tc.src, got)
		}
		h, n, err := Parse(got)
		if err != nil || n != len(got) {
			t.Fatalf("%v: parse: %v, %d of %d bytes", tc.src, err, n, len(got))
		}
		if want, _, _ := Parse(plain); h != want {
			t.Errorf("%v: parsed %+v, without the TLV %+v", tc.src, h, want)
		}
		if !bytes.Equal(AppendV2Authority(nil, tc.src, tc.dst, nil), plain) {
			t.Errorf("%v: an empty authority adds a TLV", tc.src)
		}
	}
}
