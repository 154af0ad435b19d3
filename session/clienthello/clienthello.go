// Package clienthello reads what a TLS client asks for, the server name
// (SNI) and the application protocols (ALPN), from the first bytes of a
// connection, for routing without terminating TLS.
//
// It reads the bytes where they landed, a list of receive buffers in
// arrival order, and never copies them out: the same buffers are then
// forwarded unchanged. A ClientHello may span TCP segments, buffers and
// TLS records; Parse says ErrIncomplete until all of it has arrived. It
// never allocates and never panics on any input.
package clienthello

import "errors"

// MaxHello bounds the ClientHello Parse waits for: record headers and
// handshake message together. Current browsers send 1.5-2 KiB (post-quantum
// key shares); a larger one is refused, not waited for.
const MaxHello = 16 << 10

// Limits of what a Hello holds: DNS names are at most 253 bytes, and a
// client offering more protocols than maxProtocols has the rest ignored,
// as are protocols longer than MaxProtocol.
const (
	maxName      = 253
	maxProtocols = 8
	MaxProtocol  = 32 // the longest ALPN protocol kept: a route asking for a longer one never matches
)

var (
	// ErrIncomplete: the bytes so far are a ClientHello's beginning.
	ErrIncomplete = errors.New("clienthello: incomplete")
	// ErrNotTLS: the stream does not start with a TLS handshake record.
	ErrNotTLS = errors.New("clienthello: not a TLS handshake")
	// ErrMalformed: a TLS handshake, but not a well-formed ClientHello.
	ErrMalformed = errors.New("clienthello: malformed ClientHello")
	// ErrTooLarge: the ClientHello exceeds MaxHello.
	ErrTooLarge = errors.New("clienthello: ClientHello larger than MaxHello")
)

// Hello is what a ClientHello asks for. The zero value is a hello without
// SNI or ALPN.
type Hello struct {
	name      [maxName]byte
	nameLen   uint8
	protos    [maxProtocols][MaxProtocol]byte
	protoLens [maxProtocols]uint8
	nProtos   uint8
}

// ServerName is the SNI host name, lower-cased, or "" when the client
// sent none. It allocates; NameBytes does not.
func (h *Hello) ServerName() string { return string(h.NameBytes()) }

// NameBytes is the SNI host name, lower-cased; valid while h is.
func (h *Hello) NameBytes() []byte { return h.name[:h.nameLen] }

// Protocols is how many ALPN protocols Hello holds.
func (h *Hello) Protocols() int { return int(h.nProtos) }

// Protocol is the i-th ALPN protocol offered; valid while h is.
func (h *Hello) Protocol(i int) []byte { return h.protos[i][:h.protoLens[i]] }

// Looks says whether p (bytes received so far) can be the start of a TLS
// handshake, for protocol detection: a TLS record of type handshake and a
// major version of 3.
func Looks(p []byte) bool {
	return len(p) > 0 && p[0] == recordHandshake && (len(p) < 2 || p[1] == 3)
}

const (
	recordHandshake = 0x16
	typeClientHello = 0x01
	extServerName   = 0
	extALPN         = 16
	recordHeader    = 5
	maxRecord       = 1<<14 + 2048 // TLSCiphertext bound; a plaintext one is at most 1<<14
)

// Parse reads the ClientHello at the start of the stream bufs hold, in
// order, into h. It returns ErrIncomplete while more bytes are needed.
func Parse(bufs [][]byte, h *Hello) error {
	*h = Hello{}
	r := reader{bufs: bufs}
	typ, err := r.handshakeByte()
	if err != nil {
		return err
	}
	if typ != typeClientHello {
		return ErrMalformed
	}
	n, err := r.handshakeUint(3)
	if err != nil {
		return err
	}
	if n+4 > MaxHello {
		return ErrTooLarge
	}
	body := section{r: &r, left: n}
	return parseBody(&body, h)
}

// parseBody reads a ClientHello body: version, random, session id,
// cipher suites, compression methods, then the extensions.
func parseBody(b *section, h *Hello) error {
	if err := b.skip(2 + 32); err != nil { // legacy_version, random
		return err
	}
	for _, width := range [...]int{1, 2, 1} { // session id, cipher suites, compression
		n, err := b.uint(width)
		if err != nil {
			return err
		}
		if err := b.skip(n); err != nil {
			return err
		}
	}
	if b.left == 0 {
		return nil // no extensions: an old client
	}
	exts, err := b.list(2)
	if err != nil {
		return err
	}
	for exts.left > 0 {
		if err := parseExtension(&exts, h); err != nil {
			return err
		}
	}
	return nil
}

func parseExtension(exts *section, h *Hello) error {
	typ, err := exts.uint(2)
	if err != nil {
		return err
	}
	n, err := exts.uint(2)
	if err != nil {
		return err
	}
	ext, ok := exts.sub(n)
	if !ok {
		return ErrMalformed
	}
	switch typ {
	case extServerName:
		return parseServerName(&ext, h)
	case extALPN:
		return parseALPN(&ext, h)
	}
	return ext.skip(ext.left)
}

// parseServerName reads server_name_list; the first host_name entry wins.
func parseServerName(ext *section, h *Hello) error {
	list, err := ext.list(2)
	if err != nil {
		return err
	}
	for list.left > 0 {
		typ, err := list.uint(1)
		if err != nil {
			return err
		}
		n, err := list.uint(2)
		if err != nil {
			return err
		}
		if typ != 0 || h.nameLen != 0 {
			if err := list.skip(n); err != nil {
				return err
			}
			continue
		}
		if n == 0 || n > maxName {
			return ErrMalformed
		}
		for i := 0; i < n; i++ {
			c, err := list.byte()
			if err != nil {
				return err
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			h.name[i] = c
		}
		h.nameLen = uint8(n)
	}
	return nil
}

// parseALPN reads protocol_name_list, keeping the first maxProtocols.
func parseALPN(ext *section, h *Hello) error {
	list, err := ext.list(2)
	if err != nil {
		return err
	}
	for list.left > 0 {
		n, err := list.uint(1)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrMalformed
		}
		if int(h.nProtos) == maxProtocols || n > MaxProtocol {
			if err := list.skip(n); err != nil {
				return err
			}
			continue
		}
		p := &h.protos[h.nProtos]
		for i := 0; i < n; i++ {
			if p[i], err = list.byte(); err != nil {
				return err
			}
		}
		h.protoLens[h.nProtos] = uint8(n)
		h.nProtos++
	}
	return nil
}
