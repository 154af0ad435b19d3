package clienthello

// reader walks the handshake bytes of a stream held in receive buffers:
// it steps over buffer ends and TLS record headers, so that a message
// split anywhere reads as one.
type reader struct {
	bufs   [][]byte
	i, off int // the next byte: bufs[i][off]
	record int // handshake bytes left in the current record
	read   int // stream bytes consumed, headers included (MaxHello)
}

// raw is the stream's next byte.
func (r *reader) raw() (byte, error) {
	for r.i < len(r.bufs) && r.off >= len(r.bufs[r.i]) {
		r.i, r.off = r.i+1, 0
	}
	if r.i == len(r.bufs) {
		return 0, ErrIncomplete
	}
	if r.read == MaxHello {
		return 0, ErrTooLarge
	}
	c := r.bufs[r.i][r.off]
	r.off++
	r.read++
	return c, nil
}

// recordHeader reads a record header, which must be a TLS 1.x handshake
// record that is neither empty nor oversized.
func (r *reader) recordHeader() error {
	first := r.read == 0
	var h [recordHeader]byte
	for i := range h {
		c, err := r.raw()
		if err != nil {
			return err
		}
		if (i == 0 && c != recordHandshake) || (i == 1 && c != 3) {
			if first {
				return ErrNotTLS
			}
			return ErrMalformed
		}
		h[i] = c
	}
	n := int(h[3])<<8 | int(h[4])
	if n == 0 || n > maxRecord {
		return ErrMalformed
	}
	r.record = n
	return nil
}

func (r *reader) handshakeByte() (byte, error) {
	for r.record == 0 {
		if err := r.recordHeader(); err != nil {
			return 0, err
		}
	}
	c, err := r.raw()
	if err != nil {
		return 0, err
	}
	r.record--
	return c, nil
}

// skip steps over n handshake bytes a run at a time (what fits in the
// current record and buffer), not a byte at a time: a key share is most
// of a ClientHello.
func (r *reader) skip(n int) error {
	for n > 0 {
		for r.record == 0 {
			if err := r.recordHeader(); err != nil {
				return err
			}
		}
		for r.i < len(r.bufs) && r.off >= len(r.bufs[r.i]) {
			r.i, r.off = r.i+1, 0
		}
		switch {
		case r.i == len(r.bufs):
			return ErrIncomplete
		case r.read == MaxHello:
			return ErrTooLarge
		}
		k := min(n, r.record, len(r.bufs[r.i])-r.off, MaxHello-r.read)
		r.off += k
		r.read += k
		r.record -= k
		n -= k
	}
	return nil
}

// handshakeUint reads a big-endian integer of width bytes.
func (r *reader) handshakeUint(width int) (int, error) {
	n := 0
	for range width {
		c, err := r.handshakeByte()
		if err != nil {
			return 0, err
		}
		n = n<<8 | int(c)
	}
	return n, nil
}

// section is a length-prefixed part of the message: reading past its end
// is malformed, running out of bytes within it is incomplete.
type section struct {
	r    *reader
	left int
}

func (s *section) byte() (byte, error) {
	if s.left == 0 {
		return 0, ErrMalformed
	}
	c, err := s.r.handshakeByte()
	if err == nil {
		s.left--
	}
	return c, err
}

func (s *section) uint(width int) (int, error) {
	n := 0
	for range width {
		c, err := s.byte()
		if err != nil {
			return 0, err
		}
		n = n<<8 | int(c)
	}
	return n, nil
}

func (s *section) skip(n int) error {
	if n > s.left {
		return ErrMalformed
	}
	if err := s.r.skip(n); err != nil {
		return err
	}
	s.left -= n
	return nil
}

// sub takes the next n bytes of s as a section of their own.
func (s *section) sub(n int) (section, bool) {
	if n > s.left {
		return section{}, false
	}
	s.left -= n
	return section{r: s.r, left: n}, true
}

// list reads a length of width bytes and takes that many as a section:
// the rest of s, which nothing may follow.
func (s *section) list(width int) (section, error) {
	n, err := s.uint(width)
	if err != nil {
		return section{}, err
	}
	l, ok := s.sub(n)
	if !ok || s.left != 0 {
		return section{}, ErrMalformed
	}
	return l, nil
}
