package resolve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Resolver asks one resolvers section's nameservers. Close stops its
// watches.
type Resolver struct {
	cfg    Config
	udp    *dns.Client
	tcp    *dns.Client // after a truncated UDP answer
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New checks cfg and makes a resolver of it.
func New(cfg Config) (*Resolver, error) {
	switch {
	case len(cfg.Nameservers) == 0:
		return nil, errors.New("resolvers: no nameserver")
	case cfg.Timeout <= 0:
		return nil, errors.New("resolvers: timeout must be above 0")
	case cfg.TTLMin <= 0 || cfg.TTLMax < cfg.TTLMin:
		return nil, fmt.Errorf("resolvers: ttl range %v..%v: want 0 < min <= max", cfg.TTLMin, cfg.TTLMax)
	}
	for _, ns := range cfg.Nameservers {
		if !ns.IsValid() || ns.Port() == 0 {
			return nil, fmt.Errorf("resolvers: nameserver %v: want IP:port", ns)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Resolver{cfg: cfg, ctx: ctx, cancel: cancel,
		udp: &dns.Client{Net: "udp", Timeout: cfg.Timeout, UDPSize: cfg.PayloadSize},
		tcp: &dns.Client{Net: "tcp", Timeout: cfg.Timeout}}
	return r, nil
}

// FromResolvConf reads the nameservers of a resolv.conf file
// (/etc/resolv.conf by default), each on port 53 unless it says more.
func FromResolvConf(path string) ([]netip.AddrPort, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("resolvers: read %s: %w", path, err)
	}
	var out []netip.AddrPort
	for _, s := range cc.Servers {
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
		if err != nil {
			return nil, fmt.Errorf("resolvers: %s: nameserver %q: %w", path, s, err)
		}
		port, _ := netip.ParseAddrPort(net.JoinHostPort(a.String(), cc.Port))
		out = append(out, port)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resolvers: %s names no nameserver", path)
	}
	return out, nil
}

// Close stops every watch and waits for them.
func (r *Resolver) Close() {
	r.cancel()
	r.wg.Wait()
}

// Resolve asks for q once (every nameserver in turn, Retries more rounds).
func (r *Resolver) Resolve(ctx context.Context, q Query) (Answer, error) {
	var ans Answer
	var err error
	switch q.Kind {
	case SRV:
		ans, err = r.resolveSRV(ctx, q.Name)
	default:
		ans, err = r.resolveHost(ctx, q.Name, q.Port)
	}
	if err != nil {
		return Answer{}, fmt.Errorf("resolve %s: %w", q.Name, err)
	}
	ans.At = time.Now()
	ans.Targets = sortTargets(ans.Targets)
	return ans, nil
}

// resolveHost asks A and AAAA; a name with either answers.
func (r *Resolver) resolveHost(ctx context.Context, name string, port uint16) (Answer, error) {
	var ans Answer
	var errs [2]error
	for i, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		msg, err := r.exchange(ctx, name, qtype)
		if err != nil {
			errs[i] = err
			continue
		}
		addHosts(&ans, name, msg.Answer, port)
	}
	if len(ans.Targets) > 0 {
		return ans, nil
	}
	switch {
	case errs[0] == nil && errs[1] == nil:
		return Answer{}, ErrNoRecord
	case errs[0] != nil && errs[1] != nil && errors.Is(errs[0], ErrNXDomain):
		return Answer{}, errs[0]
	case errs[0] != nil:
		return Answer{}, errs[0]
	}
	return Answer{}, errs[1]
}

// addHosts adds the A and AAAA records of rrs that answer for name.
func addHosts(ans *Answer, name string, rrs []dns.RR, port uint16) {
	for _, rr := range rrs {
		var ip net.IP
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A
		case *dns.AAAA:
			ip = v.AAAA
		default:
			continue // a CNAME on the way: its target's records follow
		}
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		ans.Targets = append(ans.Targets, Target{Addr: netip.AddrPortFrom(a.Unmap(), port), Host: strings.TrimSuffix(name, ".")})
		ans.TTL = minTTL(ans.TTL, rr.Header().Ttl)
	}
}

// resolveSRV asks the SRV records of name, and the addresses of their
// targets: from the answer's additional section when it has them, else
// by asking.
func (r *Resolver) resolveSRV(ctx context.Context, name string) (Answer, error) {
	msg, err := r.exchange(ctx, name, dns.TypeSRV)
	if err != nil {
		return Answer{}, err
	}
	var ans Answer
	for _, rr := range msg.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok || srv.Target == "." {
			continue // "." : the service is decidedly not available here
		}
		ans.TTL = minTTL(ans.TTL, srv.Hdr.Ttl)
		var host Answer
		addHosts(&host, srv.Target, additional(msg.Extra, srv.Target), srv.Port)
		if len(host.Targets) == 0 {
			if host, err = r.resolveHost(ctx, srv.Target, srv.Port); err != nil {
				continue // one target gone; the others serve
			}
		}
		for _, t := range host.Targets {
			t.Priority, t.Weight = srv.Priority, srv.Weight
			ans.Targets = append(ans.Targets, t)
		}
		ans.TTL = minTTL(ans.TTL, uint32(host.TTL/time.Second))
	}
	if len(ans.Targets) == 0 {
		return Answer{}, ErrNoRecord
	}
	return ans, nil
}

func additional(extra []dns.RR, target string) []dns.RR {
	var out []dns.RR
	for _, rr := range extra {
		if strings.EqualFold(rr.Header().Name, target) {
			out = append(out, rr)
		}
	}
	return out
}

func minTTL(cur time.Duration, ttl uint32) time.Duration {
	d := time.Duration(ttl) * time.Second
	if cur == 0 || d < cur {
		return d
	}
	return cur
}

// exchange asks every nameserver in turn for name's qtype records until
// one answers, Retries more rounds. NXDOMAIN is an answer: it ends the
// search. A truncated UDP answer is asked again over TCP.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if r.cfg.PayloadSize > 0 {
		m.SetEdns0(r.cfg.PayloadSize, false)
	}
	var last error
	for round := 0; round <= r.cfg.Retries; round++ {
		for _, ns := range r.cfg.Nameservers {
			in, err := r.ask(ctx, m, ns)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				last = fmt.Errorf("nameserver %v: %w", ns, err)
				continue
			}
			switch in.Rcode {
			case dns.RcodeSuccess:
				return in, nil
			case dns.RcodeNameError:
				return nil, fmt.Errorf("nameserver %v: %w", ns, ErrNXDomain)
			default:
				last = fmt.Errorf("nameserver %v: %w: %s", ns, ErrRefused, dns.RcodeToString[in.Rcode])
			}
		}
	}
	return nil, last
}

// ask sends m to ns once, over TCP again if the UDP answer was cut.
func (r *Resolver) ask(ctx context.Context, m *dns.Msg, ns netip.AddrPort) (*dns.Msg, error) {
	in, _, err := r.udp.ExchangeContext(ctx, m, ns.String())
	if err == nil && in.Truncated {
		in, _, err = r.tcp.ExchangeContext(ctx, m, ns.String())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, ErrTimeout
	}
	return in, err
}

// sortTargets orders targets so equal answers compare equal: SRV
// priority (lowest first), weight (highest first), then address.
func sortTargets(ts []Target) []Target {
	slices.SortFunc(ts, func(a, b Target) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(b.Weight, a.Weight), a.Addr.Compare(b.Addr), strings.Compare(a.Host, b.Host))
	})
	// The same address twice (two records, or A via two CNAMEs) is one target.
	return slices.Compact(ts)
}
