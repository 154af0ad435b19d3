package session

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"ringproxy/ring"
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

// What a control method names that is not there, for callers that answer
// in their own words (the admin socket answers as HAProxy does).
var (
	ErrNoBackend  = errors.New("no such backend")
	ErrNoServer   = errors.New("no such server")
	ErrNoFrontend = errors.New("no such frontend")
	ErrNoSession  = errors.New("no such session")
	// ErrUnchanged: the frontend already is as asked.
	ErrUnchanged = errors.New("already so")
)

func (p *Proxy) server(be, srv string) (*backend, *server, error) {
	for _, b := range p.bes {
		if b.cfg.Name != be {
			continue
		}
		for _, s := range b.servers() {
			if s.cfg.Name == srv {
				return b, s, nil
			}
		}
		return nil, nil, fmt.Errorf("backend %s: %w %q", be, ErrNoServer, srv)
	}
	return nil, nil, fmt.Errorf("%w %q", ErrNoBackend, be)
}

// ServerWeight returns server srv's weight now and its weight in the
// config, HAProxy's `get weight`. While the server warms up (slow start)
// it is the weight it ramps to, as HAProxy's uweight; Snapshot has the
// effective one.
func (p *Proxy) ServerWeight(be, srv string) (cur, initial int, err error) {
	_, s, err := p.server(be, srv)
	if err != nil {
		return 0, 0, err
	}
	return int(s.weight.Load()), s.cfg.Weight, nil
}

// AdminState is what an operator set a server to, HAProxy's
// `set server B/S state`. A drained or maintained server takes no new
// sessions; the ones it has go on until they end.
type AdminState uint32

const (
	AdminReady AdminState = iota // takes sessions while UP
	AdminDrain                   // no new sessions; still checked, keeps its health
	AdminMaint                   // no new sessions; checks paused, counted DOWN
)

var adminNames = [...]string{AdminReady: "ready", AdminDrain: "drain", AdminMaint: "maint"}

func (a AdminState) String() string { return adminNames[a] }

// ParseAdminState reads "ready", "drain" or "maint".
func ParseAdminState(s string) (AdminState, bool) {
	for i, n := range adminNames {
		if s == n {
			return AdminState(i), true
		}
	}
	return 0, false
}

// SetServerState sets server srv of backend be to ready, drain or maint,
// as HAProxy's `set server B/S state`. Entering maint pauses its checks
// and takes it DOWN; leaving maint makes it UP at once, checked again
// right away, one failure from DOWN (as HAProxy does).
func (p *Proxy) SetServerState(be, srv string, st AdminState) error {
	b, s, err := p.server(be, srv)
	if err != nil {
		return err
	}
	p.adminMu.Lock()
	defer p.adminMu.Unlock()
	was := s.adminState()
	if was == st {
		return nil
	}
	switch {
	case st == AdminMaint:
		if b.monitor != nil && !s.inMaint() {
			b.monitor.Pause(s.idx)
		}
		wasUp := s.up.Load()
		s.admin.Store(uint32(st))
		s.up.Store(false)
		p.coolDown(b, s)
		if wasUp {
			defer p.onDown(b, s) // HAProxy's on-marked-down applies to maint too
		}
	case was == AdminMaint:
		s.admin.Store(uint32(st))
		if !s.inMaint() { // else it stays out until its name resolves
			p.warmUp(b, s) // leaving maint is coming back, as HAProxy's: it warms up
			up := true
			if b.monitor != nil {
				up = b.monitor.Resume(s.idx) // DOWN still if its agent said so
			}
			s.up.Store(up)
		}
	default:
		s.admin.Store(uint32(st))
	}
	b.refresh(s)
	p.hist.observe(b, time.Now()) // dated now, not at the next sample
	p.log.Info("server admin state", "server", be+"/"+srv, "from", was.String(), "to", st.String())
	p.stateChanged()
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
	p.stateChanged()
	return nil
}

// sessionID names session s of worker id: the worker, the slot and the
// slot's reuse count, so an id that outlived its session names no other
// (until the count wraps, 16 million sessions later in that slot).
func sessionID(worker int, s *Session) uint64 {
	return uint64(worker)<<56 | uint64(s.gen&0xffffff)<<32 | uint64(s.idx)
}

// ShutdownSession ends the live session id names (Sessions gives ids),
// HAProxy's `shutdown session`.
func (p *Proxy) ShutdownSession(id uint64) error {
	wid, idx := int(id>>56), uint32(id)
	if wid >= len(p.workers) {
		return ErrNoSession
	}
	w, found := p.workers[wid], false
	w.control(func() {
		if idx >= uint32(w.slab.Cap()) {
			return
		}
		s := w.slab.At(idx)
		if sessionID(wid, s) == id && s.state != stFree && s.state != stClosing {
			w.closeSession(s, ReasonKilled)
			found = true
		}
	})
	if !found {
		return ErrNoSession
	}
	return nil
}

// ShutdownSessions ends every session assigned to server srv of backend
// be, and says how many.
func (p *Proxy) ShutdownSessions(be, srv string) (int, error) {
	_, s, err := p.server(be, srv)
	if err != nil {
		return 0, err
	}
	return p.closeSessionsOf(func(x *server) bool { return x == s }, ReasonKilled), nil
}

// closeSessionsOf ends every live session whose server is one of, with
// why, in each worker's loop, and says how many.
func (p *Proxy) closeSessionsOf(of func(*server) bool, why Reason) int {
	n := 0
	for _, w := range p.workers {
		w.control(func() {
			for i := 0; i < w.slab.Cap(); i++ {
				ss := w.slab.At(uint32(i))
				if ss.srv != nil && ss.state != stFree && ss.state != stClosing && of(ss.srv) {
					w.closeSession(ss, why)
					n++
				}
			}
		})
	}
	return n
}

// SessionInfo is one live session, as `show sess` prints it.
type SessionInfo struct {
	ID       uint64 // names it for ShutdownSession while it lives (sessionID)
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
				peer := s.peer
				if !peer.IsValid() && s.si[clientSide].state != siClo {
					peer, _ = ring.PeerAddr(s.si[clientSide].fd) // not read at accept: nothing needed it
				}
				out = append(out, SessionInfo{ID: sessionID(w.id, s), Worker: w.id, Client: peer, Frontend: s.fe.cfg.Name, Backend: be,
					Server: srv, State: stateNames[s.state], Age: time.Duration(w.now - s.accepted),
					BytesIn: s.req.bytes, BytesOut: s.rep.bytes})
			}
		})
	}
	return out
}

// SetFrontendEnabled stops frontend name from taking clients (enabled
// false), as HAProxy's `disable frontend`: its sockets stay bound but
// refuse connections, so clients fail over at once instead of waiting in
// a backlog nobody serves; sessions it has go on. Enabling makes the
// sockets listen again. A reload enables every frontend, as HAProxy's.
func (p *Proxy) SetFrontendEnabled(name string, enabled bool) error {
	fe := p.frontendNamed(name)
	if fe == nil {
		return fmt.Errorf("%w %q", ErrNoFrontend, name)
	}
	p.adminMu.Lock()
	defer p.adminMu.Unlock()
	if fe.paused.Load() != enabled {
		return ErrUnchanged
	}
	if enabled {
		return p.enableFrontend(fe)
	}
	fe.paused.Store(true)
	for _, fd := range p.onListeners(fe, (*worker).pauseListener) {
		if err := ring.StopListening(fd); err != nil {
			p.log.Warn("disable frontend: socket still listens", "frontend", name, "err", err)
		}
	}
	p.log.Info("frontend disabled", "frontend", name)
	return nil
}

func (p *Proxy) enableFrontend(fe *frontend) error {
	fds := p.onListeners(fe, func(*worker, *listener) {})
	for _, fd := range fds {
		if err := ring.Relisten(fd, listenBacklog); err != nil {
			return fmt.Errorf("enable frontend %s: listen: %w", fe.cfg.Name, err)
		}
	}
	fe.paused.Store(false)
	p.onListeners(fe, (*worker).unpauseListener)
	p.log.Info("frontend enabled", "frontend", fe.cfg.Name)
	return nil
}

// onListeners runs do on every open listener of fe, each in its worker's
// loop, and returns their fds.
func (p *Proxy) onListeners(fe *frontend, do func(*worker, *listener)) []int {
	var fds []int
	for _, w := range p.workers {
		w.control(func() {
			for _, l := range w.listeners {
				if l.fe == fe && l.state != liClosed {
					do(w, l)
					fds = append(fds, l.fd)
				}
			}
		})
	}
	return fds
}

func (p *Proxy) frontendNamed(name string) *frontend {
	for _, f := range p.fes {
		if f.cfg.Name == name {
			return f
		}
	}
	return nil
}
