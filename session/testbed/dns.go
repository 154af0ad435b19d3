package testbed

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Zone is an in-process nameserver on loopback UDP and TCP (miekg/dns's
// server side): records by name, and per name an rcode or silence to
// stand in for a failing nameserver. A proxy's [resolvers] points at
// Addr.
type Zone struct {
	addr netip.AddrPort
	mu   sync.Mutex
	rrs  map[string][]dns.RR // by lower-case FQDN
	code map[string]int      // rcode to answer for a name instead
	mute map[string]bool     // answer nothing for a name (a timeout)
	asks map[string]int      // questions seen, by "name. TYPE"
	big  bool                // answer UDP with TC set, so clients ask again over TCP
}

// StartZone starts a nameserver until the test ends.
func StartZone(t testing.TB) *Zone {
	t.Helper()
	z := &Zone{rrs: map[string][]dns.RR{}, code: map[string]int{}, mute: map[string]bool{}, asks: map[string]int{}}
	// UDP and TCP on one port: a port another test holds over TCP is
	// tried again.
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ln == nil; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		z.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		if ln, err = net.Listen("tcp", z.addr.String()); err != nil {
			pc.Close()
			if try == 20 {
				t.Fatal(err)
			}
		}
	}
	udp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) { z.serve(w, m, true) })}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) { z.serve(w, m, false) })}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return z
}

// Addr is where the nameserver answers, over UDP and TCP.
func (z *Zone) Addr() netip.AddrPort { return z.addr }

func (z *Zone) serve(w dns.ResponseWriter, m *dns.Msg, udp bool) {
	q := m.Question[0]
	name := strings.ToLower(q.Name)
	z.mu.Lock()
	defer z.mu.Unlock()
	z.asks[name+" "+dns.TypeToString[q.Qtype]]++
	if z.mute[name] {
		return
	}
	r := new(dns.Msg)
	r.SetReply(m)
	if c, ok := z.code[name]; ok {
		r.Rcode = c
		w.WriteMsg(r)
		return
	}
	if z.big && udp {
		r.Truncated = true
		w.WriteMsg(r)
		return
	}
	rrs, found := z.rrs[name]
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			r.Answer = append(r.Answer, dns.Copy(rr))
		}
		if srv, ok := rr.(*dns.SRV); ok && q.Qtype == dns.TypeSRV {
			for _, x := range z.rrs[strings.ToLower(srv.Target)] {
				r.Extra = append(r.Extra, dns.Copy(x))
			}
		}
	}
	if !found {
		r.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(r)
}

// Set replaces name's records with those given in zone-file form
// ("app.internal. 0 IN A 10.0.0.1"); none makes it NXDOMAIN. It ends a
// Fail or Silence of name.
func (z *Zone) Set(t testing.TB, name string, records ...string) {
	t.Helper()
	var rrs []dns.RR
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	key := dns.Fqdn(strings.ToLower(name))
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(rrs) == 0 {
		delete(z.rrs, key)
	} else {
		z.rrs[key] = rrs
	}
	delete(z.code, key)
	delete(z.mute, key)
}

// Fail makes name answer rcode (dns.RcodeServerFailure, ...).
func (z *Zone) Fail(name string, rcode int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.code[dns.Fqdn(strings.ToLower(name))] = rcode
}

// Silence makes name unanswered: its queries time out.
func (z *Zone) Silence(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.mute[dns.Fqdn(strings.ToLower(name))] = true
}

// Truncate makes every UDP answer empty with TC set, as a nameserver
// does for an answer too big for UDP: clients must ask again over TCP.
func (z *Zone) Truncate(on bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.big = on
}

// Asked is how many times the question "name. TYPE" came.
func (z *Zone) Asked(q string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.asks[q]
}
