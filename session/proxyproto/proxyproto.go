package proxyproto

import (
	"errors"
	"net/netip"
)

// Command is the v2 command nibble; v1 headers map onto it too.
type Command uint8

const (
	// Local: use the real connection endpoints (v2 LOCAL, v2 UNSPEC family,
	// v1 UNKNOWN). Src and Dst are zero.
	Local Command = 0x0
	// Proxy: Src and Dst are the original client's connection endpoints.
	Proxy Command = 0x1
)

func (c Command) String() string {
	switch c {
	case Local:
		return "LOCAL"
	case Proxy:
		return "PROXY"
	}
	return "Command(?)"
}

// Header is a parsed PROXY protocol header.
type Header struct {
	Version  int            // 1 or 2
	Command  Command        // Local or Proxy (v1 is always Proxy, or Local for "UNKNOWN")
	Src, Dst netip.AddrPort // zero for Local
	// v2 TLVs are skipped (validated for length), not kept.
}

// Size limits.
const (
	// MaxV1 is the longest v1 line, CRLF included ("PROXY UNKNOWN" with two
	// full-length IPv6 addresses and ports, per the spec).
	MaxV1 = 107
	// MaxV2 caps the v2 length field (address block plus TLVs). The field
	// allows 65535, but real senders use a few hundred bytes at most, and
	// the cap bounds what a session may buffer before it is judged.
	MaxV2 = 4096
	// V2HeaderLen is the fixed part of a v2 header: signature, version and
	// command, family, length.
	V2HeaderLen = 16
	// MaxHeaderLen is the most bytes Parse can need before it reaches a
	// verdict: with this many bytes buffered it never returns ErrIncomplete.
	MaxHeaderLen = V2HeaderLen + MaxV2
)

// Signatures. v2sig is written to be rejected by text protocols (it holds a
// NUL and "QUIT"), and neither signature is a prefix of the other, so the
// first byte already tells which one to follow.
const (
	v1Sig = "PROXY "
	v2Sig = "\r\n\r\n\x00\r\nQUIT\n"
)

// ErrIncomplete means the bytes seen so far are a valid prefix of a header:
// read more (within the header timeout) and call Parse again.
var ErrIncomplete = errors.New("proxyproto: incomplete header")

// Reasons an *Error carries, for per-reason counters.
const (
	// ReasonNotProxy: the stream does not start with either signature.
	ReasonNotProxy = "not-proxy"
	// ReasonBadV1: a malformed v1 line.
	ReasonBadV1 = "bad-v1"
	// ReasonBadV2: a malformed v2 header (version, command, undefined
	// family, length too short for the addresses, broken TLVs).
	ReasonBadV2 = "bad-v2"
	// ReasonTooLong: no CRLF within MaxV1 bytes, or a v2 length above MaxV2.
	ReasonTooLong = "too-long"
	// ReasonUnsupportedFamily: a well-formed v2 PROXY header for UDP or
	// UNIX sockets, which a TCP proxy cannot use.
	ReasonUnsupportedFamily = "unsupported-family"
)

// Reasons lists every Reason Parse can report, so counters can be set up
// front.
func Reasons() []string {
	return []string{ReasonNotProxy, ReasonBadV1, ReasonBadV2, ReasonTooLong, ReasonUnsupportedFamily}
}

// Error is an invalid header: the session must be closed. Reason is one of
// the Reason constants; Msg says what exactly was wrong. Parse returns shared
// values: do not modify them.
type Error struct {
	Reason string
	Msg    string
}

func (e *Error) Error() string { return "proxyproto: " + e.Msg + " (" + e.Reason + ")" }

// Preallocated so that rejecting input never allocates.
var (
	errNotProxy = &Error{ReasonNotProxy, "no PROXY protocol signature"}

	errV1Proto   = &Error{ReasonBadV1, "v1: protocol is not TCP4, TCP6 or UNKNOWN"}
	errV1Sep     = &Error{ReasonBadV1, "v1: fields must be separated by exactly one space"}
	errV1Addr4   = &Error{ReasonBadV1, "v1: invalid IPv4 address"}
	errV1Addr6   = &Error{ReasonBadV1, "v1: invalid IPv6 address"}
	errV1Port    = &Error{ReasonBadV1, "v1: invalid port"}
	errV1CRLF    = &Error{ReasonBadV1, "v1: CR not followed by LF"}
	errV1LF      = &Error{ReasonBadV1, "v1: LF without CR"}
	errV1TooLong = &Error{ReasonTooLong, "v1: no CRLF within 107 bytes"}

	errV2Version = &Error{ReasonBadV2, "v2: version is not 2"}
	errV2Command = &Error{ReasonBadV2, "v2: command is neither LOCAL nor PROXY"}
	errV2Family  = &Error{ReasonBadV2, "v2: undefined address family or transport"}
	errV2Short   = &Error{ReasonBadV2, "v2: length shorter than the address block"}
	errV2TLV     = &Error{ReasonBadV2, "v2: TLVs do not tile the rest of the header"}
	errV2TooLong = &Error{ReasonTooLong, "v2: length above MaxV2"}
	errV2Family2 = &Error{ReasonUnsupportedFamily, "v2: UDP and UNIX addresses are not supported"}
)

// Parse reads a header from the start of b. It returns the header and how
// many bytes it took (b[n:] is payload), ErrIncomplete if b is a valid prefix
// of a header that needs more bytes, or an *Error.
//
// It never looks past the header (at most MaxV1 bytes for v1, V2HeaderLen +
// MaxV2 for v2), decides "not-proxy" on the first byte that cannot start
// either signature, and checks every other byte as soon as it is seen where
// that is cheap, so garbage is rejected before the header timeout. Its
// verdicts are monotonic: a prefix of b gets either ErrIncomplete or the same
// verdict as b. It does not allocate and does not modify b.
func Parse(b []byte) (Header, int, error) {
	var sig string
	switch {
	case len(b) == 0:
		return Header{}, 0, ErrIncomplete
	case b[0] == v1Sig[0]:
		sig = v1Sig
	case b[0] == v2Sig[0]:
		sig = v2Sig
	default:
		return Header{}, 0, errNotProxy
	}
	k := min(len(b), len(sig))
	if string(b[:k]) != sig[:k] {
		return Header{}, 0, errNotProxy
	}
	if k < len(sig) {
		return Header{}, 0, ErrIncomplete
	}
	if sig == v1Sig {
		return parseV1(b)
	}
	return parseV2(b)
}
