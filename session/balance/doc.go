// Package balance chooses the server for a new session: HAProxy-style
// balancing algorithms (roundrobin, static-rr, leastconn, source,
// consistent, random, first) over one backend's servers, with backup
// servers and redispatch ("avoid the server that just failed").
//
// It owns the choice only. It never does I/O, never blocks beyond a short
// per-backend critical section, and Pick never allocates: it runs once per
// new session on every worker goroutine at once. Session counts are read
// through a Load callback over counters the caller owns; health state comes
// in through SetUsable. Anything that can be precomputed (weighted
// sequences, the consistent-hash ring) is rebuilt in SetUsable and published
// as an immutable snapshot, so most Picks take no lock at all; only
// roundrobin, whose state changes on every pick, takes the backend's mutex.
//
// Tiers: Pick considers usable primaries with weight > 0; only when there
// is none does the same algorithm run over the usable backups with weight >
// 0 (all of them share the load, like HAProxy's "option allbackups").
//
// Hashing (source, consistent) uses a fixed, unseeded hash of the client's
// 16-byte address (IPv4 and IPv4-mapped IPv6 are the same client), so two
// independent proxies with the same configuration send a client to the same
// server. Changing that hash remaps every client: treat it as a format.
package balance
