package proxyproto

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, tc := range validCases {
		f.Add([]byte(tc.in))
		f.Add([]byte(tc.in + payload))
	}
	for _, tc := range invalidCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		h, n, err := Parse(b)
		if !bytes.Equal(b, orig) {
			t.Fatal("Parse modified its input")
		}
		var perr *Error
		switch {
		case err == nil:
			checkHeader(t, b, h, n)
		case err == ErrIncomplete:
			if n != 0 || h != (Header{}) {
				t.Fatalf("ErrIncomplete with n=%d h=%+v", n, h)
			}
			if len(b) >= MaxHeaderLen || (len(b) > 0 && b[0] == 'P' && len(b) >= MaxV1) {
				t.Fatalf("ErrIncomplete after %d bytes", len(b))
			}
		case errors.As(err, &perr):
			if n != 0 || h != (Header{}) {
				t.Fatalf("error with n=%d h=%+v", n, h)
			}
			known := false
			for _, r := range Reasons() {
				known = known || r == perr.Reason
			}
			if !known || perr.Msg == "" {
				t.Fatalf("unknown reason in %#v", perr)
			}
			// Monotonic: prefixes are incomplete or rejected alike. Only
			// the first MaxHeaderLen+1 bytes can matter.
			for k := min(len(b), MaxHeaderLen+1) - 1; k >= 0; k-- {
				if _, _, e := Parse(b[:k]); e != ErrIncomplete && reasonOf(e) != perr.Reason {
					t.Fatalf("prefix %d: %v, whole: %v", k, e, err)
				}
			}
			// And more bytes do not change the verdict either.
			if _, _, e := Parse(append(bytes.Clone(b), payload...)); reasonOf(e) != perr.Reason {
				t.Fatalf("with payload: %v, without: %v", e, err)
			}
		default:
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}

// checkHeader checks a successful Parse(b) = h, n.
func checkHeader(t *testing.T, b []byte, h Header, n int) {
	t.Helper()
	if n <= 0 || n > len(b) {
		t.Fatalf("n = %d, len = %d", n, len(b))
	}
	switch h.Version {
	case 1:
		if n > MaxV1 || b[n-2] != '\r' || b[n-1] != '\n' {
			t.Fatalf("v1 header of %d bytes: %q", n, b[:n])
		}
	case 2:
		if n > MaxHeaderLen || n < V2HeaderLen {
			t.Fatalf("v2 header of %d bytes", n)
		}
	default:
		t.Fatalf("version %d", h.Version)
	}
	switch h.Command {
	case Local:
		if h.Src != (netip.AddrPort{}) || h.Dst != (netip.AddrPort{}) {
			t.Fatalf("local with addresses: %+v", h)
		}
	case Proxy:
		if !h.Src.IsValid() || !h.Dst.IsValid() || h.Src.Addr().Is4() != h.Dst.Addr().Is4() ||
			h.Src.Addr().Zone() != "" || h.Dst.Addr().Zone() != "" {
			t.Fatalf("bad addresses: %+v", h)
		}
	default:
		t.Fatalf("command %v", h.Command)
	}
	// The header alone parses the same, so nothing after it was looked at.
	if h2, n2, err := Parse(b[:n]); err != nil || h2 != h || n2 != n {
		t.Fatalf("Parse(b[:n]) = %+v, %d, %v; Parse(b) = %+v, %d", h2, n2, err, h, n)
	}
	// Every proper prefix is incomplete.
	for k := 0; k < n; k++ {
		if _, _, err := Parse(b[:k]); err != ErrIncomplete {
			t.Fatalf("prefix %d of %d: %v", k, n, err)
		}
	}
	// Re-encoding gives the same endpoints back.
	if h.Command == Proxy {
		enc := AppendV1
		if h.Version == 2 {
			enc = AppendV2
		}
		e := enc(nil, h.Src, h.Dst)
		h2, n2, err := Parse(e)
		if err != nil || n2 != len(e) || h2.Command != Proxy ||
			!sameEndpoint(h2.Src, h.Src) || !sameEndpoint(h2.Dst, h.Dst) {
			t.Fatalf("re-encoded %+v as %q: %+v, %v", h, e, h2, err)
		}
	}
}

// fuzzAddr makes an address from fuzz bytes: 16 or more bytes give IPv6
// (maybe with a zone), 4 to 15 give IPv4, fewer give the invalid zero Addr.
func fuzzAddr(b []byte, port uint16, zone bool) netip.AddrPort {
	var a netip.Addr
	switch {
	case len(b) >= 16:
		a = netip.AddrFrom16([16]byte(b[:16]))
		if zone {
			a = a.WithZone("eth0")
		}
	case len(b) >= 4:
		a = netip.AddrFrom4([4]byte(b[:4]))
	default:
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, port)
}

func FuzzRoundTrip(f *testing.F) {
	for _, p := range [][2]netip.AddrPort{
		{ap("1.2.3.4:1111"), ap("5.6.7.8:2222")},
		{ap("[2001:db8::1]:1"), ap("[" + ffff6 + "]:65535")},
		{ap("[::ffff:1.2.3.4]:1"), ap("[::1]:2")},
		{ap("1.2.3.4:1"), ap("[::ffff:5.6.7.8]:2")},
	} {
		s, d := p[0].Addr().AsSlice(), p[1].Addr().AsSlice()
		f.Add(s, p[0].Port(), d, p[1].Port(), false)
		f.Add(s, p[0].Port(), d, p[1].Port(), true)
	}
	f.Add([]byte{}, uint16(0), []byte{1, 2, 3, 4}, uint16(0), false)
	f.Fuzz(func(t *testing.T, sb []byte, sp uint16, db []byte, dp uint16, zone bool) {
		src, dst := fuzzAddr(sb, sp, zone), fuzzAddr(db, dp, zone)
		valid := src.IsValid() && dst.IsValid()
		v4 := valid && src.Addr().Unmap().Is4() && dst.Addr().Unmap().Is4()
		for v, enc := range []func([]byte, netip.AddrPort, netip.AddrPort) []byte{AppendV1, AppendV2} {
			e := enc([]byte("x"), src, dst)[1:]
			h, n, err := Parse(append(e, payload...))
			if err != nil || n != len(e) || h.Version != v+1 {
				t.Fatalf("v%d %v → %v: %q: %+v, %d, %v", v+1, src, dst, e, h, n, err)
			}
			if v == 0 && len(e) > MaxV1 {
				t.Fatalf("v1 line of %d bytes", len(e))
			}
			if !valid {
				if h.Command != Local {
					t.Fatalf("v%d %v → %v: %+v", v+1, src, dst, h)
				}
				continue
			}
			if h.Command != Proxy || !sameEndpoint(h.Src, src) || !sameEndpoint(h.Dst, dst) ||
				h.Src.Addr().Is4() != v4 {
				t.Fatalf("v%d %v → %v: %q: %+v", v+1, src, dst, e, h)
			}
		}
	})
}

// FuzzAddrText checks the hand-written v1 address parsers against
// net/netip, which they replace only to avoid allocating.
func FuzzAddrText(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "01.2.3.4", "::", "::ffff:1.2.3.4", "1:2:3:4:5:6:7::",
		"::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", ffff6, long6v4, "fe80::1%eth0", "1.2.3", ":1::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := netip.ParseAddr(s)
		a4, ok4 := parseIPv4([]byte(s))
		a6, ok6 := parseIPv6([]byte(s))
		if w := werr == nil && want.Is4(); ok4 != w || ok4 && a4 != want {
			t.Fatalf("parseIPv4(%q) = %v, %v; netip: %v, %v", s, a4, ok4, want, werr)
		}
		if w := werr == nil && want.Is6() && want.Zone() == ""; ok6 != w || ok6 && a6 != want {
			t.Fatalf("parseIPv6(%q) = %v, %v; netip: %v, %v", s, a6, ok6, want, werr)
		}
		// Every prefix of a valid IPv4 text passes the early check.
		for k := 0; ok4 && k <= len(s); k++ {
			if !dottedPrefix([]byte(s[:k])) {
				t.Fatalf("dottedPrefix(%q) = false, a prefix of %q", s[:k], s)
			}
		}
	})
}
