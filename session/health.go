package session

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/session/balance"
	"ringproxy/session/health"
)

// Server state. Servers start UP, as in HAProxy: a restarted proxy keeps
// serving while its first checks run (each server's first check comes
// within a second), and a dead server is out after `fall` fast checks or
// `fall` failed connects on live traffic, whichever comes first. It comes
// back only after `rise` successful checks. A DOWN server takes no new
// sessions; the ones it has go on until they end.

// HealthSpec turns a backend's [backend.check] into the checker's spec.
func HealthSpec(c *Check) health.Spec {
	return health.Spec{
		Kind:         health.Kind(c.Kind),
		Interval:     c.Interval,
		Timeout:      c.Timeout,
		Rise:         c.Rise,
		Fall:         c.Fall,
		Path:         c.Path,
		Host:         c.Host,
		ExpectStatus: c.ExpectStatus,
		Send:         []byte(c.Send),
		Expect:       []byte(c.Expect),
		Steps:        c.Steps,
	}
}

// CheckAddr is where s's checks connect: its own address unless the
// server's check_address/check_port or the check's address/port say
// otherwise (port alone keeps the server's address).
func CheckAddr(c *Check, s *Server) netip.AddrPort { return checkAddrAt(c, s, s.Address) }

// checkAddrAt is CheckAddr with s at traffic address cur (its address
// now, which may not be the config's).
func checkAddrAt(c *Check, s *Server, cur netip.AddrPort) netip.AddrPort {
	addr, port := cur.Addr(), cur.Port()
	switch {
	case s.CheckAddress.IsValid():
		addr = s.CheckAddress
	case c.Address.IsValid():
		addr = c.Address
	}
	switch {
	case s.CheckPort != 0:
		port = s.CheckPort
	case c.Port != 0:
		port = c.Port
	}
	return netip.AddrPortFrom(addr, port)
}

// AgentAddr is where s's agent listens: the server's agent_address, else
// the agent's address, else the server's IP; agent_port, else the
// agent's port.
func AgentAddr(a *Agent, s *Server) netip.AddrPort { return agentAddrAt(a, s, s.Address) }

// agentAddrAt is AgentAddr for s at its current address cur.
func agentAddrAt(a *Agent, s *Server, cur netip.AddrPort) netip.AddrPort {
	addr, port := cur.Addr(), a.Port
	switch {
	case s.AgentAddress.IsValid():
		addr = s.AgentAddress
	case a.Address.IsValid():
		addr = a.Address
	}
	if s.AgentPort != 0 {
		port = s.AgentPort
	}
	return netip.AddrPortFrom(addr, port)
}

// backendSpec is the checker's spec for all b's health parts: its
// regular check, its agent and observe.
func (p *Proxy) backendSpec(b *backend) health.Spec {
	cfg := b.cfg
	spec := health.Spec{Kind: health.NoCheck}
	if cfg.Check != nil {
		spec = HealthSpec(cfg.Check)
	}
	if a := cfg.Agent; a != nil {
		spec.Agent = &health.AgentSpec{Interval: a.Interval, Timeout: a.Timeout, Send: []byte(a.Send),
			Apply: func(i int, r health.AgentReply) { p.agentSaid(b, b.all()[i], r) }}
	}
	if o := cfg.Observe; o != nil {
		spec.Observe = &health.ObserveSpec{ErrorLimit: o.ErrorLimit, OnError: health.OnError(o.OnError), Downtime: o.Downtime}
	}
	return spec
}

// healthTarget is what b's monitor checks of s: at its address now, its
// check and agent endpoints derived from it.
func (p *Proxy) healthTarget(b *backend, s *server) health.Target {
	cur := s.address()
	t := health.Target{Name: b.cfg.Name + "/" + s.cfg.Name, Addr: cur, Down: !s.up.Load(), Paused: s.inMaint()}
	t.Check, t.Agent = b.endpoints(s, cur)
	return t
}

// endpoints are where s's checks and agent connect when it is at cur
// (the zero value: none configured).
func (b *backend) endpoints(s *server, cur netip.AddrPort) (check, agent netip.AddrPort) {
	if b.cfg.Check != nil {
		check = checkAddrAt(b.cfg.Check, s.cfg, cur)
	}
	if b.cfg.Agent != nil {
		agent = agentAddrAt(b.cfg.Agent, s.cfg, cur)
	}
	return check, agent
}

// watched says whether b has anything a monitor runs.
func (b *backend) watched() bool {
	return b.cfg.Check != nil || b.cfg.Agent != nil || b.cfg.Observe != nil
}

// startChecks starts a monitor for every backend with a check, an agent
// or observe.
func (p *Proxy) startChecks() error {
	for _, b := range p.bes {
		if !b.watched() {
			continue
		}
		all := b.all()
		targets := make([]health.Target, len(all))
		for i, s := range all {
			targets[i] = p.healthTarget(b, s)
		}
		m, err := health.Start(p.backendSpec(b), targets, func(ev health.Event) { p.serverChanged(b, ev) })
		if err != nil {
			p.stopChecks()
			return fmt.Errorf("backend %s: health checks: %w", b.cfg.Name, err)
		}
		b.monitor = m
	}
	return nil
}

func (p *Proxy) stopChecks() {
	for _, b := range p.bes {
		if b.monitor != nil {
			b.monitor.Stop()
		}
	}
}

// serverChanged applies a checker's verdict: a DOWN server leaves the
// balancer, an UP one comes back; on_down and on_up then close the
// sessions they name.
func (p *Proxy) serverChanged(b *backend, ev health.Event) {
	s := b.all()[ev.Server]
	if ev.Up && !s.inMaint() {
		p.warmUp(b, s) // before it is usable: no burst at full weight
	}
	s.up.Store(ev.Up)
	b.refresh(s)
	if !ev.Up {
		p.coolDown(b, s)
	}
	p.hist.observe(b, time.Now())
	p.transitions.Add(1)
	p.stateChanged()
	if ev.Up {
		p.log.Info(ev.Message)
		p.onUp(b, s)
	} else {
		p.log.Warn(ev.Message)
		p.onDown(b, s)
	}
}

// onDown closes s's sessions once it is out (DOWN or maint) with on_down
// = "shutdown-sessions", so pooled clients reconnect to a server that
// works instead of writing to one that may be demoted. It runs on a
// goroutine of its own: the workers close them in their loops, and the
// checker that called it must not wait for them.
func (p *Proxy) onDown(b *backend, s *server) {
	if b.cfg.OnDown != OnDownShutdownSessions {
		return
	}
	go func() {
		n := p.closeSessionsOf(func(x *server) bool { return x == s }, ReasonServerDown)
		p.log.Warn("on_down: closed the sessions of a server that went out", "server", b.cfg.Name+"/"+s.cfg.Name, "sessions", n)
	}()
}

// onUp closes the backups' sessions when primary s comes UP with on_up =
// "shutdown-backup-sessions", so their clients come back to it.
func (p *Proxy) onUp(b *backend, s *server) {
	if b.cfg.OnUp != OnUpShutdownBackupSessions || s.cfg.Backup {
		return
	}
	go func() {
		n := p.closeSessionsOf(func(x *server) bool { return x.be == b && x.cfg.Backup }, ReasonServerUp)
		p.log.Info("on_up: closed the backups' sessions as a primary came up", "server", b.cfg.Name+"/"+s.cfg.Name, "sessions", n)
	}()
}

// The values of Backend.OnDown and OnUp that act.
const (
	OnDownShutdownSessions     = "shutdown-sessions"
	OnUpShutdownBackupSessions = "shutdown-backup-sessions"
)

// connectReason names a connect failure for passive health observation:
// constant strings, so the data path allocates nothing.
func connectReason(err error) string {
	var errno unix.Errno
	switch {
	case errors.Is(err, errConnectTimeout):
		return "connect timeout"
	case errors.As(err, &errno) && errno == unix.ECONNREFUSED:
		return "connect refused"
	case errors.As(err, &errno):
		return "connect failed: " + errno.Error()
	}
	return "connect failed"
}

// ServerStatus is one server as Servers reports it.
type ServerStatus struct {
	Backend  string
	Server   string
	Addr     netip.AddrPort
	Up       bool
	Sessions int64               // assigned to it now, all workers
	Check    *health.ServerState // nil when the backend has no checks
}

// Servers is a read-only snapshot of every server's state, for stats.
func (p *Proxy) Servers() []ServerStatus {
	var out []ServerStatus
	for _, b := range p.bes {
		var checks []health.ServerState
		if b.monitor != nil {
			checks = b.monitor.Snapshot()
		}
		for _, s := range b.servers() {
			st := ServerStatus{Backend: b.cfg.Name, Server: s.cfg.Name, Addr: s.address(), Up: s.up.Load(), Sessions: s.cur.Load()}
			if checks != nil {
				st.Check = &checks[s.idx]
			}
			out = append(out, st)
		}
	}
	return out
}

// agentSaid carries out an agent's admin, weight and maxconn words, as
// HAProxy does: the admin word as the admin socket's set server state
// (an agent's ready ends an operator's drain), the weight through
// SetServerWeight, N% of the configured weight. It runs on the agent's
// goroutine.
func (p *Proxy) agentSaid(b *backend, s *server, r health.AgentReply) {
	name := b.cfg.Name + "/" + s.cfg.Name
	switch r.Admin {
	case health.AgentReady, health.AgentDrain, health.AgentMaint:
		st := [...]AdminState{health.AgentReady: AdminReady, health.AgentDrain: AdminDrain, health.AgentMaint: AdminMaint}[r.Admin]
		if s.adminState() != st {
			p.log.Info("agent sets the server's admin state", "server", name, "state", st.String())
			if err := p.SetServerState(b.cfg.Name, s.cfg.Name, st); err != nil {
				p.log.Warn("agent: set server state", "server", name, "err", err)
			}
		}
	}
	w := r.Weight
	if r.WeightPct >= 0 {
		w = min(s.cfg.Weight*min(r.WeightPct, 25600)/100, balance.MaxWeight)
	}
	if w >= 0 && int32(w) != s.weight.Load() {
		if err := p.SetServerWeight(b.cfg.Name, s.cfg.Name, w); err != nil {
			p.log.Warn("agent: set weight", "server", name, "err", err)
		}
	}
	if r.MaxConn >= 0 && int64(r.MaxConn) != s.maxconn.Load() {
		if err := b.setMaxConn(s, r.MaxConn); err != nil {
			p.log.Warn("agent: set maxconn", "server", name, "err", err)
		} else {
			p.log.Info("server maxconn", "server", name, "maxconn", r.MaxConn)
		}
	}
}
