package clienthello

// Need is a lower bound on the stream bytes a well-formed ClientHello
// starting as bufs do takes: Parse cannot succeed on fewer; 0 means parse
// now. It reads only the record and handshake headers, so a caller that
// parses again only once it holds Need bytes does work in proportion to
// the records, not the bytes, of a ClientHello that arrives a byte at a
// time. A malformed one may be refused by Parse before Need is reached;
// it is refused once it is, or when the caller parses at the stream's
// end.
func Need(bufs [][]byte) int {
	s := stream{bufs: bufs}
	total := s.len()
	pos, got, want := 0, 0, -1 // stream offset of the next record; handshake bytes seen; the message's length with its header, once known
	var hdr [4]byte
	for {
		if (pos < total && s.at(pos) != recordHandshake) || (pos+1 < total && s.at(pos+1) != 3) {
			return 0 // not TLS, or a bad record: Parse says which
		}
		if pos+recordHeader > total {
			rest := 1
			if want >= 0 {
				rest = want - got
			}
			return min(pos+recordHeader+rest, MaxHello)
		}
		n := int(s.at(pos+3))<<8 | int(s.at(pos+4))
		if n == 0 || n > maxRecord {
			return 0
		}
		start := pos + recordHeader
		avail := min(n, total-start)
		for i := 0; got+i < 4 && i < avail; i++ {
			hdr[got+i] = s.at(start + i)
		}
		if got == 0 && avail > 0 && hdr[0] != typeClientHello {
			return 0
		}
		before := got
		got += avail
		if want < 0 && got >= 4 {
			want = 4 + (int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3]))
			if want > MaxHello {
				return 0 // Parse refuses it at once
			}
		}
		switch {
		case want >= 0 && got >= want:
			return 0 // all of it is here
		case want >= 0 && before+n >= want:
			return min(start+want-before, MaxHello) // it ends in this record
		case avail < n:
			return min(start+n, MaxHello) // this record first
		}
		pos = start + n
	}
}

// stream reads bytes at stream offsets across buffers; few buffers, so a
// walk per byte is cheap.
type stream struct{ bufs [][]byte }

func (s stream) len() int {
	n := 0
	for _, b := range s.bufs {
		n += len(b)
	}
	return n
}

func (s stream) at(i int) byte {
	for _, b := range s.bufs {
		if i < len(b) {
			return b[i]
		}
		i -= len(b)
	}
	return 0
}
