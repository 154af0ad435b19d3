package session

import (
	"net/netip"
	"slices"
)

// allowed says whether client address a may open a session on f: not in
// deny, and in allow when allow is set. IPv4 clients of an IPv6 listener
// (4-in-6) match IPv4 prefixes.
func (f *frontend) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f.cfg.Deny {
		if p.Contains(a) {
			return false
		}
	}
	if len(f.cfg.Allow) == 0 {
		return true
	}
	for _, p := range f.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// needsPeer says whether the accept path must read the client address:
// for the source checks, a source route, or a backend it may send
// sessions to that sends PROXY headers or balances on the source.
func (f *frontend) needsPeer() bool {
	if len(f.cfg.Allow) > 0 || len(f.cfg.Deny) > 0 || f.cfg.PerSourceRate > 0 {
		return true
	}
	wants := func(b *backend) bool { return b != nil && (b.cfg.SendProxy != "" || b.sticky) }
	return wants(f.be) || slices.ContainsFunc(f.routes, func(r feRoute) bool { return len(r.rule.Source) > 0 || wants(r.be) })
}
