// Package resolve turns server names into addresses through DNS and keeps
// them current, as HAProxy's resolvers section does: A and AAAA for a
// host name, SRV for a service (targets, ports, weights), re-resolved on
// the answer's TTL within configured bounds, the last good answer kept
// through failures for hold_valid and through NXDOMAIN for hold_nx.
//
// It owns the DNS queries (github.com/miekg/dns builds and parses every
// message; no wire format is written here), its goroutines and the held
// answers. It never runs on a worker loop and never touches a session or
// a server: it reports answers to a callback, and its caller decides
// what a changed address means for new sessions.
package resolve
