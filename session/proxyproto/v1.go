package proxyproto

import (
	"bytes"
	"net/netip"
)

// Byte classes of v1 fields, so that a field is scanned once and a byte that
// cannot belong to it is rejected at once rather than when CRLF shows up.
const (
	cDigit = 1 << iota // 0-9
	cHex               // a-f A-F (digits are cDigit)
	cDot               // .
	cColon             // :
	cUpper             // A-Z
)

var class = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] |= cHex
		t[c-'a'+'A'] |= cHex
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= cUpper
	}
	t['.'] |= cDot
	t[':'] |= cColon
	return t
}()

// Longest field texts. 45 is INET6_ADDRSTRLEN-1, the longest IPv6 text
// ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255").
const (
	maxProto = len("UNKNOWN")
	maxAddr4 = len("255.255.255.255")
	maxAddr6 = 45
	maxPort  = len("65535")
)

// span returns the end of the run of class c bytes starting at w[i]. It looks
// at no more than max+1 bytes: a result beyond i+max means the field is too
// long, found without scanning all of it.
func span(w []byte, i, max int, c uint8) int {
	j := i
	for j < len(w) && j-i <= max && class[w[j]]&c != 0 {
		j++
	}
	return j
}

// parseV1 parses a line known to start with "PROXY ".
//
// It works on a window of at most MaxV1 bytes. Running out of the window
// before the CRLF means ErrIncomplete when b is shorter than MaxV1 (the
// rest may come) and "too-long" otherwise (it cannot fit), which keeps
// verdicts monotonic: every b of MaxV1 bytes or more sees the same window.
func parseV1(b []byte) (Header, int, error) {
	w := b
	short := ErrIncomplete
	if len(w) >= MaxV1 {
		w, short = w[:MaxV1], errV1TooLong
	}
	i := len(v1Sig)

	j := span(w, i, maxProto, cUpper|cDigit)
	proto := w[i:j]
	if j == len(w) {
		if isPrefix(proto, "TCP4") || isPrefix(proto, "TCP6") || isPrefix(proto, "UNKNOWN") {
			return Header{}, 0, short
		}
		return Header{}, 0, errV1Proto
	}
	var six bool
	switch {
	case string(proto) == "TCP4":
	case string(proto) == "TCP6":
		six = true
	case string(proto) == "UNKNOWN":
		return parseV1Unknown(w, j, short)
	case len(proto) == 0 && isSep(w[j]):
		return Header{}, 0, errV1Sep
	default:
		return Header{}, 0, errV1Proto
	}
	if w[j] != ' ' {
		return Header{}, 0, fieldErr(w[j], errV1Proto)
	}

	var h Header
	var src, dst netip.Addr
	var sport, dport uint16
	var err error
	i = j + 1
	if src, i, err = v1Addr(w, i, six, short); err != nil {
		return h, 0, err
	}
	if dst, i, err = v1Addr(w, i, six, short); err != nil {
		return h, 0, err
	}
	if sport, i, err = v1Port(w, i, ' ', short); err != nil {
		return h, 0, err
	}
	if dport, i, err = v1Port(w, i, '\r', short); err != nil {
		return h, 0, err
	}
	// i is just past the CR.
	if i == len(w) {
		return h, 0, short
	}
	if w[i] != '\n' {
		return h, 0, errV1CRLF
	}
	h = Header{
		Version: 1,
		Command: Proxy,
		Src:     netip.AddrPortFrom(src, sport),
		Dst:     netip.AddrPortFrom(dst, dport),
	}
	return h, i + 1, nil
}

// parseV1Unknown finishes an UNKNOWN line; w[j] is the byte after
// "UNKNOWN". The spec says to ignore whatever precedes the CRLF; a bare LF
// is still refused, since accepting it would let the line run on into what
// is really payload until some later CRLF.
func parseV1Unknown(w []byte, j int, short error) (Header, int, error) {
	k := j
	switch w[j] {
	case '\r':
	case ' ':
		for k++; k < len(w) && w[k] != '\r'; k++ {
			if w[k] == '\n' {
				return Header{}, 0, errV1LF
			}
		}
		if k == len(w) {
			return Header{}, 0, short
		}
	case '\n':
		return Header{}, 0, errV1LF
	default:
		return Header{}, 0, errV1Proto
	}
	// w[k] is the CR.
	if k+1 == len(w) {
		return Header{}, 0, short
	}
	if w[k+1] != '\n' {
		return Header{}, 0, errV1CRLF
	}
	return Header{Version: 1, Command: Local}, k + 2, nil
}

// v1Addr parses an address field followed by a space, starting at w[i], and
// returns the index after the space. An unfinished IPv4 field is checked
// exactly; an unfinished IPv6 one only for its characters and length (exact
// would cost more code than the earlier rejection is worth). The full text
// is checked once its end is seen.
func v1Addr(w []byte, i int, six bool, short error) (netip.Addr, int, error) {
	max, c, bad := maxAddr4, uint8(cDigit|cDot), errV1Addr4
	if six {
		max, c, bad = maxAddr6, cDigit|cHex|cDot|cColon, errV1Addr6
	}
	j := span(w, i, max, c)
	switch {
	case j-i > max:
		return netip.Addr{}, 0, bad
	case j == len(w):
		if !six && !dottedPrefix(w[i:j]) {
			return netip.Addr{}, 0, bad
		}
		return netip.Addr{}, 0, short
	case w[j] != ' ':
		return netip.Addr{}, 0, fieldErr(w[j], bad)
	case j == i:
		return netip.Addr{}, 0, errV1Sep
	}
	var a netip.Addr
	var ok bool
	if six {
		a, ok = parseIPv6(w[i:j])
	} else {
		a, ok = parseIPv4(w[i:j])
	}
	if !ok {
		return netip.Addr{}, 0, bad
	}
	return a, j + 1, nil
}

// v1Port parses a port field followed by delim, starting at w[i], and
// returns the index after delim. Every prefix of a valid port is a valid
// port, so an unfinished field is checked exactly.
func v1Port(w []byte, i int, delim byte, short error) (uint16, int, error) {
	j := span(w, i, maxPort, cDigit)
	p, ok := parsePort(w[i:j])
	switch {
	case j-i > maxPort:
		return 0, 0, errV1Port
	case j == len(w):
		if j == i || ok {
			return 0, 0, short
		}
		return 0, 0, errV1Port
	case w[j] != delim:
		return 0, 0, fieldErr(w[j], errV1Port)
	case j == i:
		return 0, 0, errV1Sep
	case !ok:
		return 0, 0, errV1Port
	}
	return p, j + 1, nil
}

// fieldErr picks the error for a field ended by the unexpected byte c: a
// separator in the wrong place, or a byte foreign to the field.
func fieldErr(c byte, bad *Error) *Error {
	if isSep(c) {
		return errV1Sep
	}
	return bad
}

func isSep(c byte) bool { return c == ' ' || c == '\r' || c == '\n' }

// isPrefix reports whether p is a prefix of s (without allocating: the
// conversion in a comparison is free).
func isPrefix(p []byte, s string) bool {
	return len(p) <= len(s) && string(p) == s[:len(p)]
}

// parsePort parses a decimal port in [0, 65535] without sign or leading
// zero (the spec forbids them to avoid any octal confusion).
func parsePort(s []byte) (uint16, bool) {
	if len(s) == 0 || len(s) > maxPort || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	v := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > 0xffff {
		return 0, false
	}
	return uint16(v), true
}

// parseIPv4 parses exactly four decimal octets in [0, 255] separated by
// single dots, without leading zeros (the spec's octal rule again).
func parseIPv4(s []byte) (netip.Addr, bool) {
	var a [4]byte
	if !parseDotted(s, &a) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
}

func parseDotted(s []byte, a *[4]byte) bool {
	n, v, digits := 0, 0, 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			if digits == 1 && v == 0 {
				return false // leading zero
			}
			v = v*10 + int(c-'0')
			digits++
			if v > 255 {
				return false
			}
		case c == '.':
			if digits == 0 || n == 3 {
				return false
			}
			a[n] = byte(v)
			n, v, digits = n+1, 0, 0
		default:
			return false
		}
	}
	if n != 3 || digits == 0 {
		return false
	}
	a[3] = byte(v)
	return true
}

// dottedPrefix reports whether s can be extended into a valid dotted quad.
// It completes s the shortest way ("1.2." → "1.2.0.0") and checks that:
// a prefix of a valid octet is a valid octet, so a completion exists iff
// this one is valid.
func dottedPrefix(s []byte) bool {
	if len(s) == 0 {
		return true
	}
	if len(s) > maxAddr4 {
		return false
	}
	var buf [maxAddr4 + len(".0.0.0")]byte
	c := append(buf[:0], s...)
	if c[len(c)-1] == '.' {
		c = append(c, '0')
	}
	for dots := bytes.Count(c, []byte{'.'}); dots < 3; dots++ {
		c = append(c, ".0"...)
	}
	var a [4]byte
	return parseDotted(c, &a)
}

// parseIPv6 parses RFC 4291 text: eight groups of one to four hex digits, at
// most one "::" standing for one or more zero groups, and optionally a dotted
// IPv4 address as the last 32 bits (inet_ntop writes v4-mapped addresses as
// "::ffff:1.2.3.4", so senders do emit it). No zone: the wire has none.
// netip.ParseAddr would do, but it takes a string, and converting costs an
// allocation per address on the hot path.
func parseIPv6(s []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // where "::" stands in ip, if seen
	n := 0         // bytes of ip filled
	i := 0
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis, i = 0, 2
	}
	for i < len(s) {
		start, v := i, 0
		for i < len(s) && i-start <= 4 && class[s[i]]&(cDigit|cHex) != 0 {
			v = v<<4 | int(unhex(s[i]))
			i++
		}
		if i == start || i-start > 4 {
			return netip.Addr{}, false
		}
		if i < len(s) && s[i] == '.' {
			// Dotted quad: only as the last 32 bits.
			if n > 12 || (ellipsis < 0 && n != 12) {
				return netip.Addr{}, false
			}
			var a [4]byte
			if !parseDotted(s[start:], &a) {
				return netip.Addr{}, false
			}
			copy(ip[n:], a[:])
			n += 4
			break
		}
		if n == 16 {
			return netip.Addr{}, false
		}
		ip[n], ip[n+1] = byte(v>>8), byte(v)
		n += 2
		if i == len(s) {
			break
		}
		if s[i] != ':' {
			return netip.Addr{}, false
		}
		i++
		switch {
		case i < len(s) && s[i] == ':':
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = n
			i++
		case i == len(s):
			return netip.Addr{}, false // trailing single colon
		}
	}
	switch {
	case n < 16 && ellipsis < 0:
		return netip.Addr{}, false // too few groups
	case n == 16 && ellipsis >= 0:
		return netip.Addr{}, false // "::" must stand for at least one group
	case n < 16:
		// Move what followed "::" to the end and zero the gap.
		gap := 16 - n
		copy(ip[ellipsis+gap:], ip[ellipsis:n])
		clear(ip[ellipsis : ellipsis+gap])
	}
	return netip.AddrFrom16(ip), true
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
