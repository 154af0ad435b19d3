package proxyproto

import (
	"net/netip"
	"testing"
)

func TestParseAllocs(t *testing.T) {
	inputs := map[string]string{
		"v1/tcp4":    "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" + payload,
		"v1/tcp6":    "PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 1111 2222\r\n" + payload,
		"v1/unknown": "PROXY UNKNOWN\r\n",
		"v2/tcp4":    v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2), tlv(1, "h2")),
		"v2/tcp6":    v2hdr(0x21, 0x21, addr6("::1", "::2", 1, 2)),
		"v2/local":   v2hdr(0x20, 0x00),
		// Rejections and partial headers are free too.
		"not-proxy":   "GET / HTTP/1.1\r\n",
		"bad-v1":      "PROXY TCP4 1.2.3.4 5.6.7.999 1 2\r\n",
		"bad-v2":      v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2), []byte{1}),
		"incomplete":  "PROXY TCP6 2001:db8::1 ",
		"incomplete4": "PROXY TCP4 1.2.",
	}
	for name, in := range inputs {
		b := []byte(in)
		var err error
		allocs := testing.AllocsPerRun(100, func() { _, _, err = Parse(b) })
		if allocs != 0 {
			t.Errorf("%s: Parse allocates %v times (err %v)", name, allocs, err)
		}
	}
}

func TestAppendAllocs(t *testing.T) {
	buf := make([]byte, 0, MaxV1)
	pairs := [][2]netip.AddrPort{
		{ap("1.2.3.4:1111"), ap("5.6.7.8:2222")},
		{ap("[" + ffff6 + "]:65535"), ap("[" + ffff6 + "]:65535")},
		{ap("1.2.3.4:1"), ap("[fe80::1%eth0]:2")},
		{{}, {}},
	}
	for _, p := range pairs {
		if a := testing.AllocsPerRun(100, func() { buf = AppendV1(buf[:0], p[0], p[1]) }); a != 0 {
			t.Errorf("AppendV1%v allocates %v times", p, a)
		}
		if a := testing.AllocsPerRun(100, func() { buf = AppendV2(buf[:0], p[0], p[1]) }); a != 0 {
			t.Errorf("AppendV2%v allocates %v times", p, a)
		}
	}
	if a := testing.AllocsPerRun(100, func() { buf = AppendV2Local(buf[:0]) }); a != 0 {
		t.Errorf("AppendV2Local allocates %v times", a)
	}
}
