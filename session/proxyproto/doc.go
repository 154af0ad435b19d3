// Package proxyproto owns the wire format of HAProxy's PROXY protocol,
// versions 1 (text) and 2 (binary), as described in haproxy's
// doc/proxy-protocol.txt: it decides whether the first bytes of a client
// stream carry a complete, an incomplete or an invalid header, and it encodes
// the headers ringproxy sends to servers.
//
// What it must never do:
//
//   - I/O. Callers read into their own buffers and call Parse again with more
//     bytes when it reports ErrIncomplete; the header timeout is theirs too.
//   - Allocate on the parse path. Parse runs once per accepted session on the
//     worker's hot path, so it only slices the caller's buffer and builds
//     netip values (errors are preallocated package values, so even rejecting
//     garbage costs no garbage). AppendV1/AppendV2 allocate only when the
//     destination buffer lacks capacity.
//   - Panic, whatever the input: the bytes come from the network.
//   - Read past the header: the bytes after it are the client's payload.
//
// Choices worth knowing, beyond the spec:
//
//   - Command Local means "use the real connection endpoints": it is reported
//     for v2 LOCAL, for v2 PROXY over the UNSPEC family and for v1 UNKNOWN,
//     which the spec gives the same meaning. Src and Dst are then zero.
//   - v2 PROXY over UDP or UNIX (families 0x12, 0x22, 0x31, 0x32) is rejected
//     as "unsupported-family". The spec would let a receiver fall back to the
//     real endpoints; for a TCP proxy such a header means a misconfigured
//     balancer, and silently dropping the client address would hide it.
//     Under LOCAL the family is ignored, as the spec requires, but undefined
//     family bytes are rejected whatever the command.
//   - v2 TLVs after TCP4/TCP6 addresses must exactly tile the rest of the
//     block; they are then skipped (CRC32C is not verified, the spec makes
//     that optional). The block of LOCAL and UNSPEC headers is skipped
//     unread, since the spec says to ignore it.
//   - Parse returns addresses as they were on the wire: a v4-mapped IPv6
//     address stays an IPv6 address (use Addr.Unmap to compare with IPv4).
//   - The encoders unmap addresses first: if both ends are IPv4 they emit
//     TCP4 / AF_INET, otherwise TCP6 / AF_INET6 with any IPv4 end written as
//     a v4-mapped IPv6 address. IPv6 zones are dropped (the wire has no room
//     for them). An invalid (zero) address on either end yields
//     "PROXY UNKNOWN\r\n" in v1 and a PROXY command over UNSPEC with no
//     address block in v2.
package proxyproto
