package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ringproxy/session/resolve"
)

// Servers named by DNS. At start each named server gets its first
// address by its init_addr methods, in order (HAProxy's init-addr):
// "libc" asks the system's resolver (hosts file, resolv.conf), an IP
// literal is taken as is, "none" starts the server in maintenance by
// resolution (HAProxy's RMAINT) to be resolved later. Then a watch per
// server re-resolves its name through [resolvers] on the answer's TTL,
// on the resolver's goroutines, never a worker loop:
//
//   - a changed answer moves new sessions to an address of it (the
//     current one while it stays in the answer, else the first), and
//     sessions on the old address go on;
//   - a failing name keeps its last good answer for hold_valid, an
//     NXDOMAIN one for hold_nx; after that the server is taken out,
//     DOWN in maintenance by resolution, and comes back when the name
//     resolves again.
//
// Every change is logged and counted on the server (address_changes,
// resolution.failures, resolution.outs).

// Init-address methods (Server.InitAddr), besides an IP literal.
const (
	InitLibc = "libc"
	InitNone = "none"
	InitLast = "last" // the address the state file saved (needs [global] state_file)
)

// resolution is a named server's DNS state. The data path reads only out
// (through server.usable); the rest is the resolver's and the stats'.
type resolution struct {
	out      atomic.Bool   // taken out by resolution: no address, or it failed past its hold
	failures atomic.Uint64 // times its resolution started failing (held or not)
	outs     atomic.Uint64 // times it was taken out

	mu      sync.Mutex
	state   string // "ok" (it has an address), "held" (failing, the last answer kept), "out"
	host    string // a template slot's target (the SRV target's name)
	lastErr string // the latest failure, kept after recovery
	lastAt  time.Time
}

// current is the state set last.
func (r *resolution) current() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func (r *resolution) setHost(h string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.host = h
}

func (r *resolution) set(state string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = state
	if err != nil {
		r.lastErr, r.lastAt = err.Error(), time.Now()
	}
}

// ResolutionStats is a named server's resolution, for stats.
type ResolutionStats struct {
	FQDN      string    `json:"fqdn"`
	State     string    `json:"state"` // ok, held (failing, the last answer kept), out (no address, or failed past its hold)
	Maint     bool      `json:"maint"`
	Target    string    `json:"target,omitempty"`     // a template slot's: the SRV target (or the name) that fills it
	Template  string    `json:"template,omitempty"`   // the server_template it is a slot of
	SRV       bool      `json:"srv_record,omitempty"` // FQDN is an SRV name // out of service by resolution (HAProxy's MAINT (resolution)): no address, or it failed past its hold
	Failures  uint64    `json:"failures"`
	Outs      uint64    `json:"outs"`
	LastError string    `json:"last_error,omitempty"`
	LastAt    time.Time `json:"last_error_at,omitzero"`
}

func (r *resolution) stats(s *Server) *ResolutionStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &ResolutionStats{FQDN: s.FQDN, State: r.state, Maint: r.out.Load(), Failures: r.failures.Load(), Outs: r.outs.Load(),
		LastError: r.lastErr, LastAt: r.lastAt, Target: r.host}
	if t := s.Template; t != nil {
		st.Template, st.SRV = t.Name, t.SRV
	}
	return st
}

// ResolverConfig is the resolve.Config r describes, its nameservers
// read from its resolv.conf when it names none.
func ResolverConfig(r *Resolvers) (resolve.Config, error) {
	cfg := r.Config
	if len(cfg.Nameservers) == 0 {
		ns, err := resolve.FromResolvConf(r.ResolvConf)
		if err != nil {
			return cfg, err
		}
		cfg.Nameservers = ns
	}
	return cfg, nil
}

// resolvers is the config's [resolvers], or its defaults.
func (p *Proxy) resolvers() *Resolvers {
	if r := p.cfg.Resolvers; r != nil {
		return r
	}
	return &Resolvers{Config: resolve.Defaults(), ResolvConf: "/etc/resolv.conf"}
}

// prepareNames makes the resolver and gives every named server its first
// address, before anything is bound: a failure leaves nothing running.
func (p *Proxy) prepareNames() error {
	if !p.named() {
		return nil
	}
	cfg, err := ResolverConfig(p.resolvers())
	if err != nil {
		return err
	}
	r, err := resolve.New(cfg)
	if err != nil {
		return err
	}
	p.inheritNames()
	if err := p.initAddrs(); err != nil {
		r.Close()
		return err
	}
	p.resolver = r
	return nil
}

// inheritNames carries over, across a reload, the address and the
// resolution state of every named server that stays (same backend,
// server, name and port): no init_addr again, and no gap while the new
// generation's first answer comes.
func (p *Proxy) inheritNames() {
	if p.prev == nil {
		return
	}
	for _, b := range p.bes {
		for _, s := range b.servers() {
			if s.res == nil {
				continue
			}
			_, old, err := p.prev.server(b.cfg.Name, s.cfg.Name)
			if err != nil || old.res == nil || old.cfg.HashKey() != s.cfg.HashKey() {
				continue
			}
			s.addr.Store(old.addr.Load())
			s.res.set(old.res.current(), nil)
			if old.res.out.Load() {
				s.res.out.Store(true)
				s.up.Store(false)
			}
			s.inherited = true
		}
	}
}

// named says whether p has a server named by DNS.
func (p *Proxy) named() bool {
	for _, b := range p.bes {
		for _, s := range b.servers() {
			if s.res != nil {
				return true
			}
		}
	}
	return false
}

// initAddrs gives every named server not carried over from the previous
// generation its first address by its init_addr methods. It fails, as
// HAProxy refuses to start, when a server's methods all fail.
func (p *Proxy) initAddrs() error {
	var errs []error
	for _, b := range p.bes {
		for _, s := range b.servers() {
			if s.res == nil || s.inherited {
				continue
			}
			if err := p.initAddr(b, s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// initAddr tries s's init_addr methods in order.
func (p *Proxy) initAddr(b *backend, s *server) error {
	if s.cfg.Template != nil {
		s.res.out.Store(true)
		s.up.Store(false)
		s.res.set("out", errSlotEmpty)
		return nil
	}
	var tried []string
	for _, m := range s.cfg.InitAddr {
		switch m {
		case InitNone:
			s.res.out.Store(true)
			s.up.Store(false)
			s.res.set("out", errNotYet)
			p.log.Info("server starts in maintenance until its name resolves (init_addr none)", "server", b.cfg.Name+"/"+s.cfg.Name, "fqdn", s.cfg.FQDN)
			return nil
		case InitLast:
			ap, ok := p.savedAddr(b.cfg.Name, s.cfg.Name)
			if !ok {
				tried = append(tried, "last: no address for it in the state file")
				continue
			}
			s.addr.Store(newServerAddr(ap))
			s.res.set("ok", nil)
			p.log.Info("server starts at the address the state file saved (init_addr last)", "server", b.cfg.Name+"/"+s.cfg.Name, "addr", ap)
			return nil
		case InitLibc:
			ip, err := lookupLibc(s.cfg.FQDN, p.resolverTimeout())
			if err != nil {
				tried = append(tried, fmt.Sprintf("libc: %v", err))
				continue
			}
			s.addr.Store(newServerAddr(netip.AddrPortFrom(ip, s.cfg.Address.Port())))
			s.res.set("ok", nil)
			return nil
		default:
			ip, err := netip.ParseAddr(m)
			if err != nil {
				tried = append(tried, fmt.Sprintf("%s: not a method", m))
				continue
			}
			s.addr.Store(newServerAddr(netip.AddrPortFrom(ip.Unmap(), s.cfg.Address.Port())))
			s.res.set("ok", nil)
			return nil
		}
	}
	return fmt.Errorf("backend %s server %s: could not resolve %q at start (%s); add \"none\" to init_addr to start it in maintenance until it resolves",
		b.cfg.Name, s.cfg.Name, s.cfg.FQDN, strings.Join(tried, "; "))
}

// errNotYet is why a server init_addr none started out is out.
var errNotYet = errors.New("not resolved yet (init_addr none)")

// lookupLibc asks the system's resolver for host, as getaddrinfo would
// (HAProxy's init-addr libc), and takes its first address, IPv4 first.
func lookupLibc(host string, timeout time.Duration) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("%s has no address", host)
	}
	best := ips[0].Unmap()
	for _, ip := range ips[1:] {
		if ip = ip.Unmap(); ip.Is4() && !best.Is4() {
			best = ip
		}
	}
	return best, nil
}

func (p *Proxy) resolverTimeout() time.Duration {
	r := p.resolvers()
	return r.Timeout * time.Duration(r.Retries+1)
}

// watchNames starts re-resolving every named server through
// [resolvers]. Each watch asks at once, from the address the server has
// (init_addr's, or the previous generation's) as an answer received now:
// the same answer changes nothing, a failure holds it for hold_valid.
func (p *Proxy) watchNames() {
	r := p.resolver
	if r == nil {
		return
	}
	p.watchTemplates(r)
	for _, b := range p.bes {
		for _, s := range b.servers() {
			if s.res == nil || s.cfg.Template != nil {
				continue
			}
			q := resolve.Query{Name: s.cfg.FQDN, Port: s.cfg.Address.Port()}
			var start resolve.Answer
			if !s.res.out.Load() {
				start = resolve.Answer{Targets: []resolve.Target{{Addr: s.address(), Host: s.cfg.FQDN}}, At: time.Now()}
			}
			r.Watch(q, start, func(ev resolve.Event) { p.resolved(b, s, ev) })
		}
	}
}

func (p *Proxy) stopResolver() {
	if p.resolver != nil {
		p.resolver.Close()
	}
}

// resolved applies what s's watch reports.
func (p *Proxy) resolved(b *backend, s *server, ev resolve.Event) {
	name := b.cfg.Name + "/" + s.cfg.Name
	switch {
	case ev.Held:
		s.res.failures.Add(1)
		s.res.set("held", ev.Err)
		p.log.Warn("server name fails to resolve: its last answer is kept", "server", name, "fqdn", s.cfg.FQDN, "err", ev.Err,
			"address", s.address())
	case len(ev.Answer.Targets) > 0:
		ap := pickTarget(ev.Answer.Targets, s.address())
		p.moveServer(b, s, ap, ByDNS)
		s.res.set("ok", nil)
		p.resolvedBack(b, s, "its name resolves")
	default:
		if s.res.current() != "held" {
			s.res.failures.Add(1)
		}
		s.res.set("out", ev.Err)
		p.resolvedOut(b, s, ev.Err)
	}
}

// pickTarget keeps cur while the answer has it (no needless move, a
// stable slot), else takes the answer's first.
func pickTarget(ts []resolve.Target, cur netip.AddrPort) netip.AddrPort {
	for _, t := range ts {
		if t.Addr == cur {
			return cur
		}
	}
	return ts[0].Addr
}

// resolvedOut takes s out by resolution (HAProxy's MAINT (resolution)):
// DOWN, its checks paused; its sessions go on (or end, with on_down).
func (p *Proxy) resolvedOut(b *backend, s *server, why error) {
	p.adminMu.Lock()
	defer p.adminMu.Unlock()
	if s.res.out.Swap(true) {
		return
	}
	s.res.outs.Add(1)
	wasUp := s.up.Load()
	if s.adminState() != AdminMaint {
		if b.monitor != nil {
			b.monitor.Pause(s.idx)
		}
		s.up.Store(false)
	}
	b.refresh(s)
	p.hist.observe(b, time.Now())
	p.log.Warn("server is going into maintenance: its name does not resolve", "server", b.cfg.Name+"/"+s.cfg.Name, "fqdn", s.cfg.FQDN, "err", why)
	p.stateChanged()
	if wasUp {
		p.onDown(b, s)
	}
}

// resolvedBack ends s's maintenance by resolution, for why: as leaving
// maint, UP at once and checked right away (unless an operator holds it
// in maint).
func (p *Proxy) resolvedBack(b *backend, s *server, why string) {
	p.adminMu.Lock()
	defer p.adminMu.Unlock()
	if !s.res.out.Load() {
		return
	}
	s.res.out.Store(false)
	if s.adminState() != AdminMaint {
		p.warmUp(b, s) // coming back, as from maint: it warms up
		s.up.Store(true)
		if b.monitor != nil {
			b.monitor.Resume(s.idx)
		}
	}
	b.refresh(s)
	p.hist.observe(b, time.Now())
	p.log.Info("server is back from maintenance by resolution: "+why, "server", b.cfg.Name+"/"+s.cfg.Name, "fqdn", s.cfg.FQDN, "address", s.address())
	p.stateChanged()
}
