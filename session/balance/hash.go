package balance

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"sync/atomic"
)

// The hash is FNV-1a 64 over the bytes, finished with MurmurHash3's fmix64
// so every input bit reaches every output bit (FNV alone mixes its last
// bytes poorly, and both source and the ring use the top bits). Fixed and
// unseeded on purpose: independent proxies must agree.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv1a(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// hashClient hashes a client address: its 16-byte form, so 192.0.2.1 and
// ::ffff:192.0.2.1 are one client; the zone is ignored.
func hashClient(a netip.Addr) uint64 {
	b := a.As16()
	return fmix64(fnv1a(fnvOffset, b[:]))
}

// hashPoint hashes the j-th ring point of the server at ap.
func hashPoint(ap netip.AddrPort, j int) uint64 {
	var b [22]byte
	a := ap.Addr().As16()
	copy(b[:], a[:])
	binary.BigEndian.PutUint16(b[16:], ap.Port())
	binary.BigEndian.PutUint32(b[18:], uint32(j))
	return fmix64(fnv1a(fnvOffset, b[:]))
}

// hashPoint hashes the j-th ring point of s: by its Key when it has one,
// else by its address.
func (s *Server) hashPoint(j int) uint64 {
	if s.Key == "" {
		return hashPoint(s.Addr, j)
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(j))
	return fmix64(fnv1a(fnv1a(fnvOffset, []byte(s.Key)), n[:]))
}

// ident is what identifies s on a hash ring, as a string.
func (s *Server) ident() string {
	if s.Key != "" {
		return s.Key
	}
	return s.Addr.String()
}

// reduce maps a uniform 64-bit h onto [0, n) without a division (Lemire's
// multiply-shift: the high word of h·n).
func reduce(h uint64, n int) int {
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
}

// source sends a client to sequence[hash(client) mod len]: the weighted,
// gcd-reduced list of the tier's servers (HAProxy's map-based "source").
// A client stays on its server while the tier is unchanged; any change of
// the tier remaps most clients (use "consistent" when that matters).
type source struct {
	pool
	seq atomic.Pointer[sequence]
}

func (s *source) init(servers []Server, load Load) error {
	s.setup(servers, load)
	s.start(func(tier []int32) { s.seq.Store(s.sequence(tier)) })
	return nil
}

func (s *source) Pick(client netip.Addr, avoid int) (int, bool) {
	q := s.seq.Load()
	if len(q.order) == 0 {
		return -1, false
	}
	k := reduce(hashClient(client), len(q.order))
	return q.at(k, skipping(avoid, q.servers)), true
}
