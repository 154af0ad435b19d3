package proxyproto

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// Shared test tables: the table tests, the prefix sweeps and the fuzz seeds
// all range over them.

type validCase struct {
	name string
	in   string // exactly one header, no payload
	want Header
}

type invalidCase struct {
	name   string
	in     string
	reason string
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// v2hdr builds a v2 header with a correct length field over block.
func v2hdr(verCmd, fam byte, block ...[]byte) string {
	var blk []byte
	for _, p := range block {
		blk = append(blk, p...)
	}
	return v2hdrLen(verCmd, fam, len(blk), blk)
}

// v2hdrLen builds a v2 header whose length field says l, whatever blk holds.
func v2hdrLen(verCmd, fam byte, l int, blk []byte) string {
	b := []byte(v2Sig)
	b = append(b, verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(l))
	return string(append(b, blk...))
}

func addr4(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func addr6(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func tlv(typ byte, val string) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, uint16(len(val)))
	return append(b, val...)
}

const (
	ffff6   = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	long6v4 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" // 45 bytes, the longest IPv6 text
)

var (
	proxy4 = Header{Version: 1, Command: Proxy, Src: ap("1.2.3.4:1111"), Dst: ap("5.6.7.8:2222")}
	local1 = Header{Version: 1, Command: Local}
	local2 = Header{Version: 2, Command: Local}
)

func v2of(h Header) Header { h.Version = 2; return h }

var validCases = []validCase{
	// v1
	{"v1/tcp4", "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n", proxy4},
	{"v1/tcp4-max", "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
		Header{1, Proxy, ap("255.255.255.255:65535"), ap("255.255.255.255:65535")}},
	{"v1/tcp4-zero", "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n",
		Header{1, Proxy, ap("0.0.0.0:0"), ap("0.0.0.0:0")}},
	{"v1/tcp4-10", "PROXY TCP4 10.0.100.1 192.168.0.11 56324 443\r\n",
		Header{1, Proxy, ap("10.0.100.1:56324"), ap("192.168.0.11:443")}},
	{"v1/tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 1111 2222\r\n",
		Header{1, Proxy, ap("[2001:db8::1]:1111"), ap("[2001:db8::2]:2222")}},
	{"v1/tcp6-max", "PROXY TCP6 " + ffff6 + " " + ffff6 + " 65535 65535\r\n",
		Header{1, Proxy, ap("[" + ffff6 + "]:65535"), ap("[" + ffff6 + "]:65535")}},
	{"v1/tcp6-unspec-loopback", "PROXY TCP6 :: ::1 0 0\r\n",
		Header{1, Proxy, ap("[::]:0"), ap("[::1]:0")}},
	{"v1/tcp6-mapped", "PROXY TCP6 ::ffff:1.2.3.4 ::ffff:5.6.7.8 1 2\r\n",
		Header{1, Proxy, ap("[::ffff:1.2.3.4]:1"), ap("[::ffff:5.6.7.8]:2")}},
	{"v1/tcp6-uncompressed", "PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0001 2001:0DB8:0:0:0:0:0:Ab 80 443\r\n",
		Header{1, Proxy, ap("[::1]:80"), ap("[2001:db8::ab]:443")}},
	{"v1/tcp6-trailing-ellipsis", "PROXY TCP6 fe80:: 1:2:3:4:5:6:7:: 1 2\r\n",
		Header{1, Proxy, ap("[fe80::]:1"), ap("[1:2:3:4:5:6:7:0]:2")}},
	{"v1/tcp6-dotted-full", "PROXY TCP6 1:2:3:4:5:6:1.2.3.4 ::1.2.3.4 1 2\r\n",
		Header{1, Proxy, ap("[1:2:3:4:5:6:102:304]:1"), ap("[::102:304]:2")}},
	{"v1/unknown-short", "PROXY UNKNOWN\r\n", local1},
	{"v1/unknown-long", "PROXY UNKNOWN " + ffff6 + " " + ffff6 + " 65535 65535\r\n", local1}, // 107 bytes
	{"v1/unknown-garbage", "PROXY UNKNOWN whatever \x00\x7f\xff goes\r\n", local1},
	{"v1/unknown-space", "PROXY UNKNOWN \r\n", local1},
	{"v1/unknown-107", "PROXY UNKNOWN " + strings.Repeat("x", MaxV1-16) + "\r\n", local1},

	// v2
	{"v2/tcp4", v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1111, 2222)), v2of(proxy4)},
	{"v2/tcp6", v2hdr(0x21, 0x21, addr6("2001:db8::1", "2001:db8::2", 1111, 2222)),
		Header{2, Proxy, ap("[2001:db8::1]:1111"), ap("[2001:db8::2]:2222")}},
	{"v2/tcp6-mapped", v2hdr(0x21, 0x21, addr6("::ffff:1.2.3.4", "::ffff:5.6.7.8", 1, 2)),
		Header{2, Proxy, ap("[::ffff:1.2.3.4]:1"), ap("[::ffff:5.6.7.8]:2")}},
	{"v2/local", v2hdr(0x20, 0x00), local2},
	{"v2/local-with-addresses", v2hdr(0x20, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2)), local2},
	{"v2/local-with-tlvs", v2hdr(0x20, 0x00, tlv(0x04, ""), tlv(0x05, "id")), local2},
	{"v2/local-ignores-udp", v2hdr(0x20, 0x12, addr4("1.2.3.4", "5.6.7.8", 1, 2)), local2},
	{"v2/local-ignores-unix", v2hdr(0x20, 0x31), local2},
	{"v2/local-short-block", v2hdr(0x20, 0x21, []byte("abc")), local2},
	{"v2/proxy-unspec", v2hdr(0x21, 0x00), local2},
	{"v2/proxy-unspec-block", v2hdr(0x21, 0x00, []byte("anything, not TLVs")), local2},
	{"v2/tcp4-tlvs", v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1111, 2222),
		tlv(0x01, "h2"), tlv(0x02, "example.com"), tlv(0x04, ""), tlv(0xea, "\x01vpce-0123456789abcdef")), v2of(proxy4)},
	{"v2/tcp6-tlvs", v2hdr(0x21, 0x21, addr6("::1", "::2", 1, 2),
		tlv(0x20, "\x01\x00\x00\x00\x00"+string(tlv(0x21, "TLSv1.3"))), tlv(0xe0, "custom")),
		Header{2, Proxy, ap("[::1]:1"), ap("[::2]:2")}},
	{"v2/tcp4-max-length", v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1111, 2222),
		tlv(0x04, strings.Repeat("\x00", MaxV2-addrLen4-3))), v2of(proxy4)},
}

var invalidCases = []invalidCase{
	// Not a PROXY header at all.
	{"http", "GET / HTTP/1.1\r\n", ReasonNotProxy},
	{"http-1", "G", ReasonNotProxy},
	{"tls", "\x16\x03\x01\x02\x00\x01", ReasonNotProxy},
	{"ssh", "SSH-2.0-OpenSSH\r\n", ReasonNotProxy},
	{"nul", "\x00", ReasonNotProxy},
	{"space-first", " PROXY TCP4", ReasonNotProxy},
	{"proxz", "PROXZ", ReasonNotProxy},
	{"lower", "proxy TCP4", ReasonNotProxy},
	{"pproxy", "PPROXY", ReasonNotProxy},
	{"proxy-no-space", "PROXY\r\n", ReasonNotProxy},
	{"proxy-tab", "PROXY\tTCP4", ReasonNotProxy},
	{"crlf-http", "\r\nGET", ReasonNotProxy},
	{"v2sig-4", "\r\n\r\nX", ReasonNotProxy},
	{"v2sig-no-nul", "\r\n\r\n\r\nQUIT\n", ReasonNotProxy},
	{"v2sig-11", "\r\n\r\n\x00\r\nQUIT\r", ReasonNotProxy},

	// v1 protocol field.
	{"v1/proto-tcp5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/proto-x", "PROXY X", ReasonBadV1},
	{"v1/proto-lower", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/proto-udp4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/proto-tcp44", "PROXY TCP44 1.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/proto-tcp4x", "PROXY TCP4x 1.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/proto-unknownx", "PROXY UNKNOWNX\r\n", ReasonBadV1},
	{"v1/proto-unknown-tab", "PROXY UNKNOWN\t\r\n", ReasonBadV1},
	{"v1/proto-long", "PROXY UNKNOWNUNKNOWN", ReasonBadV1},
	{"v1/proto-empty", "PROXY \r\n", ReasonBadV1},
	{"v1/proto-double-space", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/proto-only", "PROXY TCP4\r\n", ReasonBadV1},
	{"v1/proto-only-space", "PROXY TCP4 \r\n", ReasonBadV1},

	// v1 separators and line end.
	{"v1/double-space-addr", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/double-space-port", "PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", ReasonBadV1},
	{"v1/tab", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/trailing-space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", ReasonBadV1},
	{"v1/extra-field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", ReasonBadV1},
	{"v1/missing-port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", ReasonBadV1},
	{"v1/missing-addr", "PROXY TCP4 1.2.3.4 1 2\r\n", ReasonBadV1},
	{"v1/lf-only", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ReasonBadV1},
	{"v1/cr-only", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET", ReasonBadV1},
	{"v1/cr-cr", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", ReasonBadV1},
	{"v1/lf-cr", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r", ReasonBadV1},
	{"v1/cr-in-addr", "PROXY TCP4 1.2.3.4\r\n", ReasonBadV1},
	{"v1/nul", "PROXY TCP4 1.2.3.4\x005.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/unknown-lf", "PROXY UNKNOWN\n", ReasonBadV1},
	{"v1/unknown-cr-x", "PROXY UNKNOWN\rX", ReasonBadV1},
	{"v1/unknown-bare-lf", "PROXY UNKNOWN a\nb\r\n", ReasonBadV1},
	{"v1/unknown-cr-cr", "PROXY UNKNOWN a\r\r\n", ReasonBadV1},

	// v1 IPv4 addresses.
	{"v1/v4-leading-zero", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-leading-zero-last", "PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n", ReasonBadV1},
	{"v1/v4-00", "PROXY TCP4 1.2.3.00 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-three", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-five", "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-256", "PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-1000", "PROXY TCP4 1000.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-double-dot", "PROXY TCP4 1..2.3 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-leading-dot", "PROXY TCP4 .1.2.3 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-trailing-dot", "PROXY TCP4 1.2.3. 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-letter", "PROXY TCP4 1.2.3.4a 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-hex", "PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-too-long", "PROXY TCP4 1.2.3.4567890123456 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-is-v6", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-mapped", "PROXY TCP4 ::ffff:1.2.3.4 5.6.7.8 1 2\r\n", ReasonBadV1},
	{"v1/v4-dst-bad", "PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n", ReasonBadV1},

	// v1 IPv6 addresses.
	{"v1/v6-is-v4", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-dst-is-v4", "PROXY TCP6 ::1 1.2.3.4 1 2\r\n", ReasonBadV1},
	{"v1/v6-nine-groups", "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-seven-groups", "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-two-ellipses", "PROXY TCP6 1::2::3 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-triple-colon", "PROXY TCP6 1:::2 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-leading-colon", "PROXY TCP6 :1::2 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-trailing-colon", "PROXY TCP6 1::2: ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-ellipsis-full", "PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-ellipsis-full-front", "PROXY TCP6 ::1:2:3:4:5:6:7:8 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-five-digits", "PROXY TCP6 12345:: ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-non-hex", "PROXY TCP6 g:: ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-brackets", "PROXY TCP6 [::1] ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-colon-only", "PROXY TCP6 : ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-dotted-leading-zero", "PROXY TCP6 ::ffff:01.2.3.4 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-dotted-five", "PROXY TCP6 ::ffff:1.2.3.4.5 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-dotted-early", "PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-dotted-short", "PROXY TCP6 1:2:3:4:5:1.2.3.4 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-dotted-middle", "PROXY TCP6 ::1.2.3.4:1 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-dotted-hex", "PROXY TCP6 ::ffff:a.2.3.4 ::1 1 2\r\n", ReasonBadV1},
	{"v1/v6-too-long", "PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0000 ::1 1 2\r\n", ReasonBadV1},

	// v1 ports.
	{"v1/port-plus", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", ReasonBadV1},
	{"v1/port-minus", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", ReasonBadV1},
	{"v1/port-leading-zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", ReasonBadV1},
	{"v1/port-00", "PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", ReasonBadV1},
	{"v1/port-65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", ReasonBadV1},
	{"v1/port-99999", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", ReasonBadV1},
	{"v1/port-six-digits", "PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n", ReasonBadV1},
	{"v1/port-hex", "PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n", ReasonBadV1},
	{"v1/port-letter", "PROXY TCP4 1.2.3.4 5.6.7.8 1a 2\r\n", ReasonBadV1},
	{"v1/port-empty-last", "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", ReasonBadV1},

	// Too long.
	{"v1/unknown-108", "PROXY UNKNOWN " + strings.Repeat("x", MaxV1-15) + "\r\n", ReasonTooLong},
	{"v1/unknown-no-crlf", "PROXY UNKNOWN " + strings.Repeat("x", 200), ReasonTooLong},
	{"v1/unknown-cr-at-107", "PROXY UNKNOWN " + strings.Repeat("x", MaxV1-15) + "\r", ReasonTooLong},
	{"v1/tcp6-longest-text", "PROXY TCP6 " + long6v4 + " " + long6v4 + " 65535 65535\r\n", ReasonTooLong},
	{"v2/length-over-max", v2hdrLen(0x21, 0x11, MaxV2+1, nil), ReasonTooLong},
	{"v2/length-ffff", v2hdrLen(0x20, 0x00, 0xffff, nil), ReasonTooLong},

	// v2 fixed fields.
	{"v2/version-0", v2hdr(0x01, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/version-1", v2hdr(0x11, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/version-3", v2hdr(0x31, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/version-f", v2hdr(0xf1, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/command-2", v2hdr(0x22, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/command-f", v2hdr(0x2f, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/family-13", v2hdr(0x21, 0x13, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/family-10", v2hdr(0x21, 0x10, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/family-01", v2hdr(0x21, 0x01, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/family-41", v2hdr(0x21, 0x41, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/family-ff", v2hdr(0x21, 0xff), ReasonBadV2},
	{"v2/local-family-41", v2hdr(0x20, 0x41), ReasonBadV2},

	// v2 lengths and TLVs.
	{"v2/tcp4-len-0", v2hdr(0x21, 0x11), ReasonBadV2},
	{"v2/tcp4-len-11", v2hdrLen(0x21, 0x11, 11, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/tcp6-len-12", v2hdr(0x21, 0x21, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonBadV2},
	{"v2/tcp6-len-35", v2hdrLen(0x21, 0x21, 35, addr6("::1", "::2", 1, 2)), ReasonBadV2},
	{"v2/tlv-1-byte", v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2), []byte{0x04}), ReasonBadV2},
	{"v2/tlv-2-bytes", v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2), []byte{0x04, 0x00}), ReasonBadV2},
	{"v2/tlv-overrun", v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2), []byte{0x04, 0x00, 0x02, 'x'}), ReasonBadV2},
	{"v2/tlv-trailing-byte", v2hdr(0x21, 0x21, addr6("::1", "::2", 1, 2), tlv(0x01, "h2"), []byte{0}), ReasonBadV2},
	{"v2/tlv-huge", v2hdr(0x21, 0x11, addr4("1.2.3.4", "5.6.7.8", 1, 2), []byte{0x04, 0xff, 0xff}), ReasonBadV2},

	// v2 families a TCP proxy cannot use.
	{"v2/udp4", v2hdr(0x21, 0x12, addr4("1.2.3.4", "5.6.7.8", 1, 2)), ReasonUnsupportedFamily},
	{"v2/udp6", v2hdr(0x21, 0x22, addr6("::1", "::2", 1, 2)), ReasonUnsupportedFamily},
	{"v2/unix-stream", v2hdr(0x21, 0x31, make([]byte, addrLenUnix)), ReasonUnsupportedFamily},
	{"v2/unix-dgram", v2hdr(0x21, 0x32, make([]byte, addrLenUnix)), ReasonUnsupportedFamily},
	{"v2/udp4-header-only", v2Sig + "\x21\x12", ReasonUnsupportedFamily},
}
