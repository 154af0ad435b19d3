package session

import (
	"net/netip"
)

// Runtime server addresses. A server's address is published as an
// immutable serverAddr behind an atomic pointer: a connect loads the one
// current then, and a change stores a new one. Sessions already on the
// old address go on (they hold theirs); new ones go to the new address.
// The balancer is not rebuilt: the server keeps its slot and its points
// on a consistent-hash ring, which stay keyed on its configured identity.

// Who changed an address, in the words HAProxy's log lines and CLI use.
const (
	ByStatsSocket = "stats socket command"
	ByDNS         = "DNS resolution"
)

// SetServerAddr moves server srv of backend be to ap for new sessions,
// HAProxy's `set server B/S addr`, and says where it was. Its checks
// follow (check_address and check_port still apply, as at start).
func (p *Proxy) SetServerAddr(be, srv string, ap netip.AddrPort) (old netip.AddrPort, err error) {
	b, s, err := p.server(be, srv)
	if err != nil {
		return netip.AddrPort{}, err
	}
	old = p.moveServer(b, s, ap, ByStatsSocket)
	if s.res != nil {
		// As HAProxy, an address given by hand ends a maintenance by
		// resolution; the next changed answer moves it again.
		p.resolvedBack(b, s, "an address was set")
	}
	return old, nil
}

// moveServer publishes s's new address ap (unless it has it already),
// moves its checks, logs and counts the change, and returns the address
// it had.
func (p *Proxy) moveServer(b *backend, s *server, ap netip.AddrPort, by string) netip.AddrPort {
	p.adminMu.Lock()
	defer p.adminMu.Unlock()
	old := s.address()
	if old == ap {
		return old
	}
	s.addr.Store(newServerAddr(ap))
	s.addrChanges.Add(1)
	if b.monitor != nil {
		check, agent := b.endpoints(s, ap)
		b.monitor.SetAddr(s.idx, ap, check, agent)
	}
	p.log.Info("server address changed", "server", b.cfg.Name+"/"+s.cfg.Name, "from", old, "to", ap, "by", by)
	p.stateChanged()
	return old
}

// ServerAddr is where new sessions to server srv of backend be go now.
func (p *Proxy) ServerAddr(be, srv string) (netip.AddrPort, error) {
	_, s, err := p.server(be, srv)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return s.address(), nil
}
