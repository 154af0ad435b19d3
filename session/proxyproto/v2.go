package proxyproto

import (
	"encoding/binary"
	"net/netip"
)

// v2 family/transport bytes (high nibble family, low nibble transport).
const (
	famUnspec    = 0x00
	famTCP4      = 0x11
	famUDP4      = 0x12
	famTCP6      = 0x21
	famUDP6      = 0x22
	famUnixTCP   = 0x31
	famUnixDgram = 0x32
)

// Address block sizes per family: two addresses, then two ports for INET.
const (
	addrLen4    = 2*4 + 2*2
	addrLen6    = 2*16 + 2*2
	addrLenUnix = 2 * 108
)

// parseV2 parses a header known to start with the 12-byte signature. Each
// fixed byte is checked as soon as it is there, in wire order, so a prefix
// never gets a different verdict from the whole.
func parseV2(b []byte) (Header, int, error) {
	if len(b) < 13 {
		return Header{}, 0, ErrIncomplete
	}
	if b[12]>>4 != 2 {
		return Header{}, 0, errV2Version
	}
	cmd := Command(b[12] & 0x0f)
	if cmd != Local && cmd != Proxy {
		return Header{}, 0, errV2Command
	}

	if len(b) < 14 {
		return Header{}, 0, ErrIncomplete
	}
	fam := b[13]
	need := 0 // address bytes a PROXY header must carry
	switch fam {
	case famUnspec:
	case famTCP4:
		need = addrLen4
	case famTCP6:
		need = addrLen6
	case famUDP4, famUDP6, famUnixTCP, famUnixDgram:
		// Defined but useless to a TCP proxy. LOCAL ignores the family, as
		// the spec requires, so only PROXY is refused.
		if cmd == Proxy {
			return Header{}, 0, errV2Family2
		}
	default:
		// The spec says undefined values must be rejected; that holds even
		// under LOCAL, whose family is otherwise ignored.
		return Header{}, 0, errV2Family
	}

	if len(b) < V2HeaderLen {
		return Header{}, 0, ErrIncomplete
	}
	l := int(binary.BigEndian.Uint16(b[14:16]))
	if l > MaxV2 {
		return Header{}, 0, errV2TooLong
	}
	if cmd == Proxy && l < need {
		return Header{}, 0, errV2Short
	}
	n := V2HeaderLen + l
	if len(b) < n {
		return Header{}, 0, ErrIncomplete
	}
	if cmd == Local || fam == famUnspec {
		// The spec: discard the block, addresses and family included.
		return Header{Version: 2, Command: Local}, n, nil
	}

	blk := b[V2HeaderLen:n]
	var h Header
	if fam == famTCP4 {
		h.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(blk[0:4])), binary.BigEndian.Uint16(blk[8:10]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(blk[4:8])), binary.BigEndian.Uint16(blk[10:12]))
	} else {
		h.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(blk[0:16])), binary.BigEndian.Uint16(blk[32:34]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(blk[16:32])), binary.BigEndian.Uint16(blk[34:36]))
	}
	if !validTLVs(blk[need:]) {
		return Header{}, 0, errV2TLV
	}
	h.Version, h.Command = 2, Proxy
	return h, n, nil
}

// validTLVs reports whether t is a whole sequence of TLVs: type (1 byte),
// big-endian length (2 bytes), then that many value bytes. The values,
// including PP2_TYPE_SSL's nested TLVs, are not looked into.
func validTLVs(t []byte) bool {
	for len(t) > 0 {
		if len(t) < 3 {
			return false
		}
		l := int(binary.BigEndian.Uint16(t[1:3]))
		if len(t)-3 < l {
			return false
		}
		t = t[3+l:]
	}
	return true
}
