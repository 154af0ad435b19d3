package session

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"ringproxy/session/balance"
)

// Servers added and deleted at runtime (HAProxy's `add server` and `del
// server`). The data path sees a new server list through the backend's
// published serverSet; a worker's per-server counters grow, inside its
// loop, before the new server is published, so a session never indexes
// past them and no session takes a lock.

// NewServer is what `add server` gives a server.
type NewServer struct {
	Name    string
	Address netip.AddrPort
	Weight  int  // 0..256
	MaxConn int  // 0 = unlimited
	Backup  bool // used only when no primary is usable
	// Check asks for health checks, which a backend runs on all its
	// servers or none: it is refused where the backend has no
	// [backend.check], and a server added to a checked backend is checked
	// whether or not it asks.
	Check bool
}

// Why add server or del server was refused, for callers that answer in
// their own words (HAProxy's).
var (
	ErrStaticBalance = errors.New("the backend's balance algorithm cannot take servers at runtime")
	ErrServerExists  = errors.New("a server with this name exists in the backend")
	ErrNotInMaint    = errors.New("only a server in maintenance can be deleted")
	ErrServerBusy    = errors.New("the server still has sessions")
	ErrNoCheck       = errors.New("the backend has no [backend.check]")
)

// dynamicBalance says whether algo may take servers at runtime. Like
// HAProxy, the static map algorithms may not: a new server would remap
// every client of source, and static-rr's table is fixed.
func dynamicBalance(algo string) bool { return algo != "source" && algo != "static-rr" }

// AddServer adds a server to backend be, in maintenance as HAProxy adds
// one: it takes sessions once an operator enables it (`enable server`,
// `set server B/S state ready`). Its name may be one a deleted server had.
func (p *Proxy) AddServer(be string, ns NewServer) error {
	b := p.backendNamed(be)
	if b == nil {
		return fmt.Errorf("%w %q", ErrNoBackend, be)
	}
	if err := b.validateNew(ns); err != nil {
		return fmt.Errorf("add server %s/%s: %w", be, ns.Name, err)
	}
	p.adminMu.Lock()
	defer p.adminMu.Unlock()
	if _, _, err := p.server(be, ns.Name); err == nil {
		return fmt.Errorf("add server %s/%s: %w", be, ns.Name, ErrServerExists)
	}
	if _, err := p.appendServer(b, ns, true); err != nil {
		return fmt.Errorf("add server %s/%s: %w", be, ns.Name, err)
	}
	p.log.Info("server added", "server", be+"/"+ns.Name, "addr", ns.Address, "weight", ns.Weight, "maxconn", ns.MaxConn, "backup", ns.Backup, "checked", b.monitor != nil)
	p.stateChanged()
	return nil
}

func (b *backend) validateNew(ns NewServer) error {
	switch {
	case !dynamicBalance(b.cfg.Balance):
		return fmt.Errorf("%w (balance %q)", ErrStaticBalance, b.cfg.Balance)
	case ns.Name == "" || ns.Name == "BACKEND" || ns.Name == "FRONTEND":
		return fmt.Errorf("%q is not a server name", ns.Name)
	case !ns.Address.IsValid() || ns.Address.Port() == 0:
		return fmt.Errorf("address %v: want IP:PORT", ns.Address)
	case ns.Weight < 0 || ns.Weight > balance.MaxWeight:
		return fmt.Errorf("weight %d out of 0..%d", ns.Weight, balance.MaxWeight)
	case ns.MaxConn < 0:
		return fmt.Errorf("maxconn %d is negative", ns.MaxConn)
	case ns.Check && b.cfg.Check == nil:
		return ErrNoCheck
	}
	return nil
}

func (p *Proxy) backendNamed(name string) *backend {
	for _, b := range p.bes {
		if b.cfg.Name == name {
			return b
		}
	}
	return nil
}

// appendServer makes ns b's next server, in maintenance, and publishes
// it: room in every counter array first (the workers' inside their
// loops, with no backend lock held while they answer), then the
// monitor, then the set. Callers hold adminMu, or own p alone (before
// Start, with no workers yet), so no other server is added or deleted
// meanwhile and s keeps the index it is given here.
func (p *Proxy) appendServer(b *backend, ns NewServer, maint bool) (*server, error) {
	cfg := &Server{Name: ns.Name, Address: ns.Address, Weight: ns.Weight, MaxConn: ns.MaxConn, Backup: ns.Backup}
	s := &server{cfg: cfg, be: b, idx: len(b.all()), dynamic: true}
	s.addr.Store(newServerAddr(cfg.Address))
	s.weight.Store(int32(cfg.Weight))
	s.limit.Store(int64(cfg.MaxConn))
	if maint {
		s.admin.Store(uint32(AdminMaint))
	} else {
		s.up.Store(true)
	}
	// The balancer must take it (consistent refuses a second server at
	// one address) before anything is grown for it.
	if err := b.withServer(s, b.rebuildCheck); err != nil {
		return nil, err
	}
	if b.monitor != nil {
		i, err := b.monitor.Add(p.healthTarget(b, s))
		if err != nil {
			return nil, err
		}
		if i != s.idx {
			return nil, fmt.Errorf("health monitor gave index %d to server %d", i, s.idx)
		}
	}
	s.gidx = int(p.nServers.Add(1)) - 1
	for _, w := range p.workers {
		w.control(func() {
			for len(w.srvCnt) <= s.gidx {
				w.srvCnt = append(w.srvCnt, ServerCounters{})
			}
		})
	}
	p.hist.addServer(s, time.Now())
	if err := b.withServer(s, b.rebuild); err != nil {
		return nil, err // rebuildCheck took the same set
	}
	return s, nil
}

// withServer runs f, under lbMu, over b's servers with s appended.
func (b *backend) withServer(s *server, f func([]*server) error) error {
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	all := b.all()
	if len(all) != s.idx {
		return fmt.Errorf("server %s: index %d, but the backend has %d servers", s.cfg.Name, s.idx, len(all))
	}
	return f(append(all[:len(all):len(all)], s))
}

// rebuildCheck says whether a balancer can be built over servers.
func (b *backend) rebuildCheck(servers []*server) error {
	_, err := balance.New(b.cfg.Balance, b.views(servers, time.Now()), nil)
	return err
}

// DelServer deletes server srv of backend be, as HAProxy's `del server`:
// only from maintenance, and only once no session holds a slot on it.
// Its checks stop; its name is free again.
func (p *Proxy) DelServer(be, srv string) error {
	b, s, err := p.server(be, srv)
	if err != nil {
		return err
	}
	p.adminMu.Lock()
	defer p.adminMu.Unlock()
	if s.deleted.Load() {
		return fmt.Errorf("backend %s: %w %q", be, ErrNoServer, srv)
	}
	if s.adminState() != AdminMaint {
		return fmt.Errorf("del server %s/%s: %w", be, srv, ErrNotInMaint)
	}
	// In maintenance nothing picks it, so the count can only fall.
	if n := s.cur.Load(); n > 0 {
		return fmt.Errorf("del server %s/%s: %w (%d)", be, srv, ErrServerBusy, n)
	}
	s.deleted.Store(true)
	if b.monitor != nil {
		b.monitor.Remove(s.idx)
	}
	b.lbMu.Lock()
	err = b.rebuild(b.all())
	b.lbMu.Unlock()
	if err != nil {
		return fmt.Errorf("del server %s/%s: %w", be, srv, err)
	}
	p.hist.observe(b, time.Now())
	p.log.Info("server deleted", "server", be+"/"+srv, "addr", s.cfg.Address)
	p.stateChanged()
	return nil
}
