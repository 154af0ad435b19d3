package session

import (
	"errors"
	"fmt"
	"net/netip"

	"ringproxy/ring"
)

// A reload runs in-process: a new Proxy (a generation) is built from the
// new config, inherits the running one's listening sockets for every
// address both configs bind, starts, and only then the old generation
// stops accepting and drains:
//
//	next, _ := session.New(cfg, log)
//	next.Inherit(cur)
//	if err := next.Start(); err != nil { /* cur serves on */ }
//	go cur.Shutdown(grace)
//
// The sockets are shared, not re-created: each generation holds its own
// dup of every listening fd, so the old one closes its copies when it
// stops without the socket (and the clients in its backlog) going away.
// An address only the old config binds closes with the old generation;
// one only the new config binds opens with the new one.

// Inherit makes p, which must not be started yet, take over prev's
// listening sockets at Start for every address both bind, and the health
// verdict (UP or DOWN) of every server both have under the same backend,
// name and address. prev must keep running until p.Start has returned:
// its sockets are duplicated then.
func (p *Proxy) Inherit(prev *Proxy) {
	p.prev = prev
}

// inherited duplicates the previous generation's sockets bound to ap, in
// its worker order. An address bound to port 0 is never inherited: it
// asks for a new port.
func (p *Proxy) inherited(ap netip.AddrPort) ([]int, error) {
	if p.prev == nil || ap.Port() == 0 {
		return nil, nil
	}
	if p.prev.stopping.Load() {
		return nil, errors.New("the previous generation is stopping: its sockets cannot be taken over")
	}
	var fds []int
	for _, old := range p.prev.bound[ap] {
		fd, err := takeOver(old)
		if err != nil {
			for _, fd := range fds {
				ring.CloseNow(fd)
			}
			return nil, fmt.Errorf("take over listening socket %v: %w", ap, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// takeOver duplicates a previous generation's listening socket and makes
// sure it listens: the previous generation may have had it disabled
// (disable frontend), and a reload enables every frontend, as HAProxy's.
func takeOver(old int) (int, error) {
	fd, err := ring.DupListener(old)
	if err != nil {
		return -1, fmt.Errorf("dup: %w", err)
	}
	if err := ring.Relisten(fd, listenBacklog); err != nil {
		ring.CloseNow(fd)
		return -1, fmt.Errorf("listen: %w", err)
	}
	return fd, nil
}

// inheritHealth carries what prev knew of each server that stays (same
// backend and server name) across a reload: an operator's drain or
// maint, a weight set at runtime unless the config changed that
// server's weight, and, for a checked server at the same address, a
// DOWN, so no traffic goes to a dead server while the new checks warm up.
// Without checks nothing would ever bring it back: it starts UP.
func (p *Proxy) inheritHealth() {
	if p.prev == nil {
		return
	}
	for _, b := range p.bes {
		for _, s := range b.servers() {
			_, old, err := p.prev.server(b.cfg.Name, s.cfg.Name)
			if err != nil {
				continue
			}
			p.inheritServer(b, s, old)
		}
		p.inheritAdded(b)
	}
}

// inheritAdded carries over the servers an operator added to b's
// namesake at runtime, with their state, unless the config now declares
// a server of that name: the config's wins. (HAProxy drops them at a
// reload; here a reload loses no operator's work.)
func (p *Proxy) inheritAdded(b *backend) {
	ob := p.prev.backendNamed(b.cfg.Name)
	if ob == nil {
		return
	}
	for _, old := range ob.servers() {
		if !old.dynamic {
			continue
		}
		if _, _, err := p.server(b.cfg.Name, old.cfg.Name); err == nil {
			continue
		}
		c := old.cfg
		ns := NewServer{Name: c.Name, Address: c.Address, Weight: c.Weight, MaxConn: c.MaxConn, Backup: c.Backup}
		s, err := b.carry(p, ns)
		if err != nil {
			p.log.Warn("reload: server added at runtime not carried over", "server", b.cfg.Name+"/"+c.Name, "err", err)
			continue
		}
		p.inheritServer(b, s, old)
	}
}

// carry adds ns to b before Start, as appendServer does at runtime.
func (b *backend) carry(p *Proxy, ns NewServer) (*server, error) {
	if err := b.validateNew(ns); err != nil {
		return nil, err
	}
	return p.appendServer(b, ns, false)
}

func (p *Proxy) inheritServer(b *backend, s, old *server) {
	st := old.adminState()
	s.admin.Store(uint32(st))
	if st == AdminMaint || b.cfg.Check != nil && old.address() == s.address() && !old.up.Load() {
		s.up.Store(false)
	}
	if w := int(old.weight.Load()); old.cfg.Weight == s.cfg.Weight && w != s.cfg.Weight {
		if err := b.setWeight(s, w); err != nil {
			p.log.Warn("reload: runtime weight not carried over", "server", b.cfg.Name+"/"+s.cfg.Name, "weight", w, "err", err)
		}
	}
	p.inheritWarmup(b, s, old)
	b.refresh(s)
}

// inheritWarmup goes on with the ramp old was in, from where it was, if
// s still has a slow start and is up: a reload never starts a ramp (s
// would be throttled while it serves), nor cuts one short.
func (p *Proxy) inheritWarmup(b *backend, s, old *server) {
	start, warming := old.be.warmingSince(old)
	if !warming || s.cfg.SlowStart <= 0 || !s.usable() || old.cfg.Address != s.cfg.Address {
		return
	}
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	p.beginWarmup(b, s, start)
}

// adoptee is a client a stopping generation accepted but could not serve
// (it was parked at a limit), handed to the generation that took over.
type adoptee struct {
	addr netip.AddrPort // the bind it came in on
	fd   int
}

// handOver gives fd, a client this stopped worker would have to park, to
// the generation that took over l's socket. Parked, it would wait for the
// old generation's sessions to end, and be closed when its grace ran out.
func (w *worker) handOver(l *listener, fd int) bool {
	h := w.p.heir.Load()
	if h == nil || h.bound[l.addr] == nil || !h.adopt(l.addr, fd) {
		return false
	}
	w.cnt.HandedOver++
	return true
}

// adopt queues a handed-over client for worker 0. It is the reload path,
// not the data path: a lock and an append are fine here.
func (p *Proxy) adopt(addr netip.AddrPort, fd int) bool {
	p.adoptMu.Lock()
	if p.adoptClosed {
		p.adoptMu.Unlock()
		return false
	}
	p.adopted = append(p.adopted, adoptee{addr: addr, fd: fd})
	p.adoptMu.Unlock()
	w := p.workers[0]
	w.adoptDue.Store(true)
	w.wake()
	return true
}

// adoptClients takes the clients handed over as if its own listener on
// the same address had just accepted them.
func (w *worker) adoptClients() {
	w.p.adoptMu.Lock()
	list := w.p.adopted
	w.p.adopted = nil
	w.p.adoptMu.Unlock()
	for _, a := range list {
		l := w.listenerOn(a.addr)
		if l == nil { // cannot be: handOver checked the address is bound
			ring.CloseNow(a.fd)
			continue
		}
		w.accepted(l, a.fd)
	}
}

func (w *worker) listenerOn(addr netip.AddrPort) *listener {
	for _, l := range w.listeners {
		if l.addr == addr {
			return l
		}
	}
	return nil
}
