package session

import (
	"net/netip"
	"ringproxy/ring"
)

// admit runs HAProxy's event_accept checks in DESIGN.md's order and
// starts a session, or says which limit stands. Only the limits reserve
// anything; every later check that fails gives both slots back in one
// place.
func (w *worker) admit(l *listener, fd int) verdict {
	if v := w.reserveLimits(l); !v.passed() {
		return v
	}
	peer, v := w.screen(l, fd)
	if !v.passed() {
		w.unreserve(l)
		if v.result == rejected {
			w.reject(l, fd, v)
		}
		return v
	}
	l.turnAccepts++
	w.startSession(l, fd, peer)
	if l.accept == acceptMulti && !w.roomy(l) {
		w.stopAccept(l) // its last completion re-arms it single-shot
	}
	return pass
}

// reserveLimits is the first check: the frontend's rate, then a frontend
// and a global session slot, reserved.
func (w *worker) reserveLimits(l *listener) verdict {
	// Look before reserving, so that a reservation given back (which
	// wakes nobody) is rare: only a race between two workers makes one.
	if lim := l.fe.cfg.RateLimit; lim > 0 {
		if ok, wait := l.fe.rate.take(w.now, lim); !ok {
			return limitedAt(LimitRate, wait)
		}
	}
	gmax, fmax := int64(w.p.cfg.Global.MaxConn), int64(l.fe.cfg.MaxConn)
	if w.p.actconn.Load() >= gmax {
		return limitedAt(LimitGlobal, 0)
	}
	if fmax > 0 && l.fe.cur.Load() >= fmax {
		return limitedAt(LimitFrontend, 0)
	}
	// The frontend's slot first: a global slot held for a moment by a
	// session its frontend then refuses would show in max_sessions.
	if !reserve(&l.fe.cur, fmax) {
		return limitedAt(LimitFrontend, 0)
	}
	if !reserve(&w.p.actconn, gmax) {
		l.fe.cur.Add(-1)
		return limitedAt(LimitGlobal, 0)
	}
	return pass
}

// screen runs the checks after the limits: fd ceiling, socket options,
// source checks, a session from the arena. It returns the client's
// address when something needs it.
func (w *worker) screen(l *listener, fd int) (netip.AddrPort, verdict) {
	var peer netip.AddrPort
	if w.p.maxsock > 0 && fd >= w.p.maxsock {
		return peer, refusal(AcceptMaxSock, nil)
	}
	if !w.p.optsOnListener { // else fd has its listener's
		if err := l.fe.opts.Apply(fd); err != nil {
			return peer, refusal(AcceptSockOpt, err)
		}
	}
	if l.fe.wantsPeer || w.p.cfg.Log.Access {
		peer, _ = ring.PeerAddr(fd)
	}
	// With accept_proxy the source is the one the header names: checked
	// once it is read.
	if why, ok := w.sourceAllowed(l.fe, peer.Addr()); !ok && !l.fe.cfg.AcceptProxy {
		return peer, refusal(why, nil)
	}
	if w.slab.InUse() == w.slab.Cap() {
		return peer, limitedAt(LimitArena, 0)
	}
	return peer, pass
}

// sourceAllowed runs the source checks: allow/deny, then the per-source
// rate.
func (w *worker) sourceAllowed(fe *frontend, a netip.Addr) (AcceptOutcome, bool) {
	if (len(fe.cfg.Allow) > 0 || len(fe.cfg.Deny) > 0) && !fe.allowed(a) {
		return AcceptDenied, false
	}
	if fe.sources != nil && !fe.sources.take(a, w.now, fe.cfg.PerSourceRate) {
		return AcceptSourceRate, false
	}
	return AcceptOK, true
}

func (w *worker) unreserve(l *listener) {
	w.p.actconn.Add(-1)
	l.fe.cur.Add(-1)
}

// reject closes a client a check refused and counts it; an fd above
// maxsock also pauses the listener, as an fd shortage does.
func (w *worker) reject(l *listener, fd int, v verdict) {
	ring.CloseNow(fd)
	w.cnt.AcceptOutcomes[v.outcome]++
	w.feCnt[l.fe.idx].Refused++
	if v.err != nil {
		w.log.Warn("accept rejected", "frontend", l.fe.cfg.Name, "bind", l.addr, "reason", v.outcome.String(), "err", v.err)
	}
	if v.outcome == AcceptMaxSock {
		w.pauseSystem(l)
	}
}
