package proxyproto

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// AppendV1 appends the v1 line for a connection from src to dstAddr.
// Both IPv4 (after Unmap) gives TCP4; otherwise TCP6, with an IPv4 end
// written v4-mapped ("::ffff:1.2.3.4"), the only way v1 can express a mixed
// pair. Zones are dropped. If either address is invalid it appends
// "PROXY UNKNOWN\r\n". It allocates only if dst lacks capacity (MaxV1 bytes
// always suffice).
func AppendV1(dst []byte, src, dstAddr netip.AddrPort) []byte {
	s, d, six, ok := wireAddrs(src, dstAddr)
	switch {
	case !ok:
		return append(dst, "PROXY UNKNOWN\r\n"...)
	case six:
		dst = append(dst, "PROXY TCP6 "...)
	default:
		dst = append(dst, "PROXY TCP4 "...)
	}
	dst = s.AppendTo(dst)
	dst = append(dst, ' ')
	dst = d.AppendTo(dst)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(src.Port()), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(dstAddr.Port()), 10)
	return append(dst, "\r\n"...)
}

// AppendV2 appends a v2 PROXY header for a TCP connection from src to
// dstAddr, without TLVs: AF_INET if both ends are IPv4 after Unmap,
// otherwise AF_INET6 with any IPv4 end v4-mapped. If either address is
// invalid it appends a PROXY command over UNSPEC with an empty block, which
// tells the receiver to use the real endpoints. It allocates only if dst
// lacks capacity (V2HeaderLen+36 bytes always suffice).
func AppendV2(dst []byte, src, dstAddr netip.AddrPort) []byte {
	dst = append(dst, v2Sig...)
	s, d, six, ok := wireAddrs(src, dstAddr)
	switch {
	case !ok:
		return append(dst, 0x20|byte(Proxy), famUnspec, 0, 0)
	case six:
		dst = append(dst, 0x20|byte(Proxy), famTCP6, 0, addrLen6)
		a, b := s.As16(), d.As16()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
	default:
		dst = append(dst, 0x20|byte(Proxy), famTCP4, 0, addrLen4)
		a, b := s.As4(), d.As4()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
	}
	dst = binary.BigEndian.AppendUint16(dst, src.Port())
	return binary.BigEndian.AppendUint16(dst, dstAddr.Port())
}

// TypeAuthority is the v2 TLV of the host name the client asked for (the
// TLS SNI), PP2_TYPE_AUTHORITY.
const TypeAuthority = 0x02

// AppendV2Authority appends a v2 header as AppendV2 does, followed by a
// PP2_TYPE_AUTHORITY TLV holding authority when it is not empty, as
// HAProxy sends the SNI it routed on. authority is at most 255 bytes (a
// DNS name is at most 253), so V2HeaderLen+36+3+255 bytes always suffice.
func AppendV2Authority(dst []byte, src, dstAddr netip.AddrPort, authority []byte) []byte {
	start := len(dst)
	dst = AppendV2(dst, src, dstAddr)
	if len(authority) == 0 || len(authority) > 255 {
		return dst
	}
	dst = append(dst, TypeAuthority)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(authority)))
	dst = append(dst, authority...)
	binary.BigEndian.PutUint16(dst[start+V2HeaderLen-2:], uint16(len(dst)-start-V2HeaderLen))
	return dst
}

// AppendV2Local appends a v2 LOCAL header (no addresses), for connections
// the proxy makes on its own behalf such as health checks: the server then
// uses the real endpoints. v1 has no such command; the spec advises a real
// TCP4/TCP6 line there rather than UNKNOWN, which some servers refuse.
func AppendV2Local(dst []byte) []byte {
	dst = append(dst, v2Sig...)
	return append(dst, 0x20|byte(Local), famUnspec, 0, 0)
}

// wireAddrs returns the addresses as they go on the wire (see AppendV1)
// and whether they need the IPv6 form; ok is false if either is invalid.
func wireAddrs(src, dst netip.AddrPort) (s, d netip.Addr, six, ok bool) {
	if !src.IsValid() || !dst.IsValid() {
		return s, d, false, false
	}
	s, d = src.Addr().Unmap().WithZone(""), dst.Addr().Unmap().WithZone("")
	if s.Is4() && d.Is4() {
		return s, d, false, true
	}
	if s.Is4() {
		s = netip.AddrFrom16(s.As16())
	}
	if d.Is4() {
		d = netip.AddrFrom16(d.As16())
	}
	return s, d, true, true
}
