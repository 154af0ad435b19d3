package testbed

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"io"
	"math/rand/v2"
)

// maxChunk is the largest single Write the clients issue.
const maxChunk = 64 << 10

// stream is the deterministic pseudo-random byte sequence for a seed. The
// bytes depend only on the seed, never on how they are chunked, so a reader
// can regenerate and compare what it receives without buffering what was
// sent.
type stream struct{ c *rand.ChaCha8 }

func newStream(seed int64) stream {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], uint64(seed))
	copy(key[8:], "ringproxy testbed data")
	return stream{rand.NewChaCha8(key)}
}

func (s stream) fill(p []byte) { s.c.Read(p) }

// chunker picks write sizes. A quarter of writes are tiny (1..16 bytes) and
// a quarter small (1..1024), because a proxy that mishandles short reads or
// partial writes usually only shows it with odd sizes; the rest go up to
// maxChunk to keep throughput realistic.
type chunker struct{ r *rand.Rand }

func newChunker(seed int64) chunker {
	return chunker{rand.New(rand.NewPCG(uint64(seed), 0x7465737462656421))}
}

func (c chunker) next() int {
	switch c.r.IntN(4) {
	case 0:
		return 1 + c.r.IntN(16)
	case 1:
		return 1 + c.r.IntN(1024)
	default:
		return 1 + c.r.IntN(maxChunk)
	}
}

// writeStream writes size bytes of the seed's stream to w in chunker-sized
// writes. It returns how many bytes were written and their hex SHA-256.
func writeStream(w io.Writer, size int, seed int64) (int64, string, error) {
	data, sizes := newStream(seed), newChunker(seed)
	h := sha256.New()
	buf := make([]byte, maxChunk)
	var sent int64
	for sent < int64(size) {
		k := int(min(int64(sizes.next()), int64(size)-sent))
		data.fill(buf[:k])
		n, err := w.Write(buf[:k])
		h.Write(buf[:n])
		sent += int64(n)
		if err != nil {
			return sent, hexSum(h), err
		}
	}
	return sent, hexSum(h), nil
}

// verifier hashes received bytes and compares them on the fly with the
// seed's stream, remembering where they first diverged.
type verifier struct {
	want      stream
	size      int64 // bytes the sender will send
	total     int64 // bytes received so far
	firstDiff int64 // -1 until a received byte differs from the sent one
	h         hash.Hash
	scratch   []byte
}

func newVerifier(size int, seed int64) *verifier {
	return &verifier{
		want:      newStream(seed),
		size:      int64(size),
		firstDiff: -1,
		h:         sha256.New(),
		scratch:   make([]byte, maxChunk),
	}
}

// Write consumes received bytes; it never fails. After the first difference
// the expected stream is out of step, so only hashing and counting go on.
func (v *verifier) Write(got []byte) (int, error) {
	v.h.Write(got)
	for off := 0; off < len(got) && v.firstDiff < 0; {
		part := got[off:min(len(got), off+len(v.scratch))]
		v.check(v.total+int64(off), part)
		off += len(part)
	}
	v.total += int64(len(got))
	return len(got), nil
}

// check compares part, received at offset at, with the expected bytes.
// Anything beyond size was never sent, so it counts as a difference too.
func (v *verifier) check(at int64, part []byte) {
	m := int(max(0, min(int64(len(part)), v.size-at)))
	want := v.scratch[:m]
	v.want.fill(want)
	if i := firstMismatch(part[:m], want); i >= 0 {
		v.firstDiff = at + int64(i)
	} else if m < len(part) {
		v.firstDiff = at + int64(m)
	}
}

func firstMismatch(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
