package session

import (
	"fmt"
	"net/netip"
	"time"

	"ringproxy/session/balance"
)

// Runtime control. Other goroutines (the admin socket) reach a worker's
// state only by handing it a function to run inside its loop: the data
// path keeps owning its sessions without locks.

// control runs f in w's loop and waits for it; false if w has exited.
func (w *worker) control(f func()) bool {
	done := make(chan struct{})
	select {
	case w.ctl <- func() { f(); close(done) }:
	case <-w.done:
		return false
	}
	w.wake()
	select {
	case <-done:
		return true
	case <-w.done:
		return false
	}
}

// runControl runs what other goroutines queued for this loop.
func (w *worker) runControl() {
	for {
		select {
		case f := <-w.ctl:
			f()
		default:
			return
		}
	}
}

func (p *Proxy) server(be, srv string) (*backend, *server, error) {
	for _, b := range p.bes {
		if b.cfg.Name != be {
			continue
		}
		for _, s := range b.servers {
			if s.cfg.Name == srv {
				return b, s, nil
			}
		}
		return nil, nil, fmt.Errorf("backend %s has no server %q", be, srv)
	}
	return nil, nil, fmt.Errorf("no backend %q", be)
}

// SetServerEnabled drains server srv of backend be (enabled false: no new
// sessions, its sessions go on) or puts it back.
func (p *Proxy) SetServerEnabled(be, srv string, enabled bool) error {
	b, s, err := p.server(be, srv)
	if err != nil {
		return err
	}
	s.disabled.Store(!enabled)
	b.refresh(s)
	p.log.Info("server admin state", "server", be+"/"+srv, "enabled", enabled)
	return nil
}

// SetServerWeight changes a server's weight for new sessions.
func (p *Proxy) SetServerWeight(be, srv string, weight int) error {
	if weight < 0 || weight > balance.MaxWeight {
		return fmt.Errorf("weight %d out of 0..%d", weight, balance.MaxWeight)
	}
	b, s, err := p.server(be, srv)
	if err != nil {
		return err
	}
	if err := b.setWeight(s, weight); err != nil {
		return fmt.Errorf("set weight %s/%s: %w", be, srv, err)
	}
	p.log.Info("server weight", "server", be+"/"+srv, "weight", weight)
	return nil
}

// ShutdownSessions ends every session assigned to server srv of backend
// be, and says how many.
func (p *Proxy) ShutdownSessions(be, srv string) (int, error) {
	_, s, err := p.server(be, srv)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, w := range p.workers {
		w.control(func() {
			for i := 0; i < w.slab.Cap(); i++ {
				ss := w.slab.At(uint32(i))
				if ss.srv == s && ss.state != stFree && ss.state != stClosing {
					w.closeSession(ss, ReasonKilled)
					n++
				}
			}
		})
	}
	return n, nil
}

// SessionInfo is one live session, as `show sess` prints it.
type SessionInfo struct {
	Worker   int
	Client   netip.AddrPort
	Frontend string
	Backend  string
	Server   string // "-" while none is assigned
	State    string
	Age      time.Duration
	BytesIn  uint64
	BytesOut uint64
}

var stateNames = [...]string{stFree: "free", stHeader: "header", stInspect: "inspect", stQueued: "queued", stConnecting: "connecting", stForwarding: "forwarding", stClosing: "closing"}

// Sessions lists every live session, asking each worker in its loop.
func (p *Proxy) Sessions() []SessionInfo {
	var out []SessionInfo
	for _, w := range p.workers {
		w.control(func() {
			for i := 0; i < w.slab.Cap(); i++ {
				s := w.slab.At(uint32(i))
				if s.state == stFree {
					continue
				}
				srv := "-"
				if s.srv != nil {
					srv = s.srv.cfg.Name
				}
				be := "-" // not routed yet
				if s.be != nil {
					be = s.be.cfg.Name
				}
				out = append(out, SessionInfo{Worker: w.id, Client: s.peer, Frontend: s.fe.cfg.Name, Backend: be,
					Server: srv, State: stateNames[s.state], Age: time.Duration(w.now - s.accepted),
					BytesIn: s.req.bytes, BytesOut: s.rep.bytes})
			}
		})
	}
	return out
}
