package session

import (
	"fmt"
	"net/netip"
)

// Server state that outlives the process: [global].state_file holds what
// operators and checks decided about each server (HAProxy's
// server-state-file), and a new process, or a reload, begins from it.
// This package neither reads nor writes the file (session/statefile
// does); it applies what was saved before Start, and tells its owner
// when something the file holds changed.

// SavedServer is what a state file kept of one server, matched to the
// config by backend and server name.
type SavedServer struct {
	Backend string
	Server  string
	Admin   AdminState // an operator's drain or maint
	// Weight is the weight it ran with, InitWeight the config's weight
	// when it was saved: the runtime weight is restored only when the
	// config has not changed that server's weight since.
	Weight     int
	InitWeight int
	Down       bool // its checks had it DOWN
	// Addr is the address it last ran with. Restore does not apply it:
	// only a server named by DNS with init_addr "last" starts there.
	Addr netip.AddrPort
	// Added is how an operator added it at runtime (add server), for a
	// server the config does not declare: Restore adds it again first.
	Added *NewServer
}

// Restore makes p, which must not be started yet, begin from saved at
// Start: an operator's drain or maint; the runtime weight, unless the
// config's weight for that server is not the one saved beside it (the
// config wins, as in HAProxy); and DOWN for a server whose backend has
// checks, which then needs `rise` passing checks before it takes
// traffic (without checks nothing would ever bring it back: it starts
// UP). At a reload (Inherit), the running generation's state wins for
// every server it has, being newer than the file; saved applies to the
// others. Entries naming no server of p are ignored (the caller matched
// them and logged what it left out).
func (p *Proxy) Restore(saved []SavedServer) {
	p.saved = saved
}

// OnStateChange sets f, which must not block, to be called whenever
// something a state file holds changes: an operator's admin state or
// weight, a server going UP or DOWN. It is called from the goroutine that
// made the change (the admin socket's, a checker's), never from a worker
// loop. Set it before Start.
func (p *Proxy) OnStateChange(f func()) {
	p.stateHook = f
}

// stateChanged tells the owner that the state a state file holds changed.
func (p *Proxy) stateChanged() {
	if p.stateHook != nil {
		p.stateHook()
	}
}

// restoreSaved applies p.saved (see Restore), before the checks start so
// that they begin from it.
func (p *Proxy) restoreSaved() {
	for _, sv := range p.saved {
		if p.prev != nil {
			if _, _, err := p.prev.server(sv.Backend, sv.Server); err == nil {
				continue // inheritHealth carries the running state, which is newer
			}
		}
		b, s, err := p.server(sv.Backend, sv.Server)
		if err != nil && sv.Added != nil {
			b, s, err = p.restoreAdded(sv)
		}
		if err != nil {
			continue
		}
		p.restoreServer(b, s, sv)
	}
	p.saved = nil
}

// savedAddr is the address the state file saved for server srv of
// backend be (init_addr last), with the config's port if it saved none.
func (p *Proxy) savedAddr(be, srv string) (netip.AddrPort, bool) {
	for _, sv := range p.saved {
		if sv.Backend != be || sv.Server != srv || !sv.Addr.IsValid() {
			continue
		}
		if sv.Addr.Port() == 0 {
			_, s, err := p.server(be, srv)
			if err != nil {
				return netip.AddrPort{}, false
			}
			return netip.AddrPortFrom(sv.Addr.Addr(), s.cfg.Address.Port()), true
		}
		return sv.Addr, true
	}
	return netip.AddrPort{}, false
}

// restoreAdded adds again a server an operator had added at runtime.
func (p *Proxy) restoreAdded(sv SavedServer) (*backend, *server, error) {
	b := p.backendNamed(sv.Backend)
	if b == nil {
		return nil, nil, fmt.Errorf("%w %q", ErrNoBackend, sv.Backend)
	}
	s, err := b.carry(p, *sv.Added)
	if err != nil {
		p.log.Warn("state file: server added at runtime not restored", "server", sv.Backend+"/"+sv.Server, "err", err)
		return nil, nil, err
	}
	return b, s, nil
}

func (p *Proxy) restoreServer(b *backend, s *server, sv SavedServer) {
	st := sv.Admin
	// HAProxy's rule: a drain saved while the config's weight was 0 may
	// have come from that weight, and a config that gives the server a
	// weight again ends it.
	if st == AdminDrain && sv.InitWeight == 0 && s.cfg.Weight > 0 {
		st = AdminReady
	}
	s.admin.Store(uint32(st))
	down := st == AdminMaint || sv.Down && b.cfg.Check != nil
	if down {
		s.up.Store(false)
	}
	weight := s.cfg.Weight
	if sv.InitWeight == s.cfg.Weight && sv.Weight != s.cfg.Weight {
		if err := b.setWeight(s, sv.Weight); err != nil {
			p.log.Warn("state file: runtime weight not restored", "server", b.cfg.Name+"/"+s.cfg.Name, "weight", sv.Weight, "err", err)
		} else {
			weight = sv.Weight
		}
	}
	b.refresh(s)
	p.log.Info("state file: server restored", "server", b.cfg.Name+"/"+s.cfg.Name, "admin", st.String(), "weight", weight, "up", !down)
}
