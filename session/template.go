package session

import (
	"errors"
	"net/netip"

	"ringproxy/session/resolve"
)

// Server templates ([[backend.server_template]], HAProxy's
// server-template): Count servers, its slots, filled from one name's
// answer, one target each. A slot keeps its target while the answer has
// it, so its clients stay (a consistent-hash slot is keyed by the slot's
// name, not its address); a new target takes the first free slot; a
// slot whose target left the answer is emptied, out by resolution, as
// are the slots no target fills. With SRV each slot takes its target's
// port and weight (HAProxy's mapping: (weight + 255) / 256, so 0 stays 0
// and 65535 is 256).

// templateSlots lists, per template of b, its slots in order.
func (b *backend) templateSlots() map[*Template][]*server {
	var m map[*Template][]*server
	for _, s := range b.servers() {
		if t := s.cfg.Template; t != nil {
			if m == nil {
				m = map[*Template][]*server{}
			}
			m[t] = append(m[t], s)
		}
	}
	return m
}

// errSlotEmpty is why a template's slot that no target fills is out.
var errSlotEmpty = errors.New("no target of the answer for this slot")

// watchTemplates starts one watch per template of every backend.
func (p *Proxy) watchTemplates(r *resolve.Resolver) {
	for _, b := range p.bes {
		for tpl, slots := range b.templateSlots() {
			q := resolve.Query{Name: tpl.FQDN, Port: tpl.Port}
			if tpl.SRV {
				q.Kind = resolve.SRV
			}
			r.Watch(q, resolve.Answer{}, func(ev resolve.Event) { p.templateResolved(b, tpl, slots, ev) })
		}
	}
}

// templateResolved fills tpl's slots from what its watch reports.
func (p *Proxy) templateResolved(b *backend, tpl *Template, slots []*server, ev resolve.Event) {
	if ev.Held {
		for _, s := range slots {
			if !s.res.out.Load() {
				s.res.failures.Add(1)
				s.res.set("held", ev.Err)
			}
		}
		p.log.Warn("server template's name fails to resolve: its slots keep their addresses", "backend", b.cfg.Name, "template", tpl.Name,
			"fqdn", tpl.FQDN, "err", ev.Err)
		return
	}
	why := ev.Err
	if why == nil {
		why = errSlotEmpty
	}
	cur := make([]netip.AddrPort, len(slots))
	for i, s := range slots {
		if !s.res.out.Load() {
			cur[i] = s.address()
		}
	}
	assign := fillSlots(cur, ev.Answer.Targets)
	for i, s := range slots {
		j := assign[i]
		if j < 0 {
			if !s.res.out.Load() && s.res.current() != "held" {
				s.res.failures.Add(1)
			}
			s.res.set("out", why)
			p.resolvedOut(b, s, why)
			continue
		}
		t := ev.Answer.Targets[j]
		p.moveServer(b, s, t.Addr, ByDNS)
		s.res.setHost(t.Host)
		if tpl.SRV {
			p.srvWeight(b, s, t.Weight)
		}
		s.res.set("ok", nil)
		p.resolvedBack(b, s, "a target of its template's answer fills it")
	}
}

// fillSlots assigns targets to slots: cur[i] is slot i's address (the
// zero value when empty); the result's [i] is the index in ts of slot
// i's target, or -1. A slot keeps a target it has; the others, in
// order, fill the free slots, lowest first; targets beyond the slots
// are left out.
func fillSlots(cur []netip.AddrPort, ts []resolve.Target) []int {
	assign := make([]int, len(cur))
	used := make([]bool, len(ts))
	for i, a := range cur {
		assign[i] = -1
		if !a.Addr().IsValid() {
			continue
		}
		for j, t := range ts {
			if !used[j] && t.Addr == a {
				assign[i], used[j] = j, true
				break
			}
		}
	}
	next := 0
	for i := range cur {
		if assign[i] >= 0 {
			continue
		}
		for next < len(ts) && used[next] {
			next++
		}
		if next == len(ts) {
			break
		}
		assign[i], used[next] = next, true
	}
	return assign
}

// srvWeight gives s the weight of its SRV target, mapped as HAProxy maps
// DNS weights (0..65535) to its own (0..256).
func (p *Proxy) srvWeight(b *backend, s *server, dnsWeight uint16) {
	w := (int(dnsWeight) + 255) / 256
	if int(s.weight.Load()) == w {
		return
	}
	if err := b.setWeight(s, w); err != nil {
		p.log.Warn("server template: the SRV weight was not applied", "server", b.cfg.Name+"/"+s.cfg.Name, "weight", w, "err", err)
		return
	}
	p.log.Info("server weight from its SRV record", "server", b.cfg.Name+"/"+s.cfg.Name, "weight", w, "srv_weight", dnsWeight)
}
