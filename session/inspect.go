package session

import (
	"errors"

	"ringproxy/session/clienthello"
	"ringproxy/session/route"
)

// Routing. A frontend with routes chooses each session's backend before
// it connects: from the client's address alone at once, or, when a route
// looks at the protocol, the SNI or the ALPN, in stInspect: the session
// reads the client into its request channel and decides on every receive
// from the bytes queued there, in place (route.Facts), until a route can
// be chosen, the client closes, the channel is full or inspect_timeout
// passes. The bytes read stay queued and are forwarded, unchanged and
// first, once the server is connected.
//
// A ClientHello larger than the channel holds is routed by the default,
// as is (unless on_bad_hello = "close") one that is malformed or
// truncated; a session no route takes, with no default backend, is
// closed as no-route.

// nameSlot is the size of a session's slot in the worker's name area: the
// SNI it was routed by, for the access log and the PROXY v2 authority.
const nameSlot = 253

// pickBackend routes a session whose client address is final (accepted,
// or its PROXY header read): at once, or by inspecting its first bytes.
func (w *worker) pickBackend(s *Session) {
	fe := s.fe
	switch {
	case len(fe.routes) == 0:
		s.state = stConnecting
		w.assign(s, nil)
	case fe.inspects:
		s.state = stInspect
		s.inspectAt = w.now
		s.be = nil
		w.armRecv(s, clientSide)
		w.schedule(s)
		if s.req.n > 0 { // bytes behind the PROXY header
			w.inspect(s, false)
		}
	default:
		f := route.Facts{Source: s.peer.Addr(), Final: true}
		i, _ := fe.choose(&f)
		w.routeTo(s, i)
	}
}

// choose is the first route f matches (-1: the default), or wait when an
// earlier route needs more bytes to say.
func (fe *frontend) choose(f *route.Facts) (i int, wait bool) {
	for i := range fe.routes {
		switch fe.routes[i].rule.Match(f) {
		case route.Yes:
			return i, false
		case route.Wait:
			return 0, true
		}
	}
	return -1, false
}

// onInspectBytes queues a receive of a session in inspection and decides
// again. The first two receives keep their own buffers (a ClientHello over
// two segments is read across them); later ones fill the last buffer
// first, so that a client sending a byte at a time fills buffers, not the
// channel's slots. A full channel ends the inspection.
func (w *worker) onInspectBytes(s *Session, id uint16, n int) {
	ch := &s.req
	if ch.n < 2 {
		w.push(ch, id, uint32(n))
	} else {
		w.appendBytes(ch, id, n)
	}
	s.si[clientSide].lastAct = w.now
	w.inspect(s, ch.n >= chanCap)
	if s.state == stInspect {
		w.armRecv(s, clientSide)
	}
}

// inspect routes s on the bytes its request channel holds; final says no
// more will come. Undecided and not final, it waits for more.
func (w *worker) inspect(s *Session, final bool) {
	d := w.decide(s, final)
	switch {
	case d.wait:
		return
	case d.close:
		w.cnt.Inspected[d.outcome]++
		w.log.Debug("bad ClientHello", "frontend", s.fe.cfg.Name, "client", s.peer, "reason", d.outcome.String())
		w.closeSession(s, ReasonBadHello)
		return
	}
	w.cnt.Inspected[d.outcome]++
	if d.outcome == InspectTLS && s.fe.needsHello {
		w.keepName(s, w.hello.NameBytes())
	}
	w.routeTo(s, d.route)
}

// decision is what inspection concluded, for inspect to act on.
type decision struct {
	route   int            // the route taken, -1 the default
	outcome InspectOutcome // what the first bytes were
	wait    bool           // not yet: more bytes may tell
	close   bool           // a bad ClientHello, with on_bad_hello = "close"
}

// decide reads the facts from the queued bytes (the protocol, and the
// ClientHello when a route needs it, into w.hello) and matches the routes
// against them. It has no effect on s but its parse bookkeeping.
func (w *worker) decide(s *Session, final bool) decision {
	bufs := w.queuedBytes(&s.req)
	var first [route.DetectLen]byte
	f := route.Facts{Source: s.peer.Addr(), Final: final}
	f.Proto = route.Detect(leading(first[:], bufs), final)
	d := decision{outcome: protoOutcome(f.Proto)}
	if f.Proto == route.TLS && s.fe.needsHello {
		switch d.outcome = w.readHello(s, bufs, final); d.outcome {
		case InspectTLS:
			f.Hello, f.Name, f.ALPN = route.HelloOK, w.hello.NameBytes(), route.ALPNList{Hello: &w.hello}
		case inspectWaiting:
			f.Hello = route.HelloPending
		default:
			// A too-large hello is a client's right: it goes where the
			// routes that need no SNI, or the default, send it.
			if s.fe.cfg.BadHelloClose && d.outcome != InspectTooLarge {
				d.close = true
				return d
			}
			f.Hello = route.HelloFailed
		}
	}
	d.route, d.wait = s.fe.choose(&f)
	return d
}

// inspectWaiting is readHello's answer while the ClientHello is not whole.
const inspectWaiting = inspectOutcomeCount

// readHello parses the ClientHello the channel holds into w.hello, unless
// clienthello.Need says too few bytes are there yet.
func (w *worker) readHello(s *Session, bufs [][]byte, final bool) InspectOutcome {
	if !final && queuedLen(bufs) < int(s.helloNeed) {
		return inspectWaiting
	}
	err := clienthello.Parse(bufs, &w.hello)
	switch {
	case err == nil:
		return InspectTLS
	case errors.Is(err, clienthello.ErrIncomplete) && final && s.req.n >= chanCap:
		return InspectTooLarge
	case errors.Is(err, clienthello.ErrIncomplete) && final:
		return InspectTruncated
	case errors.Is(err, clienthello.ErrIncomplete):
		s.helloNeed = uint16(clienthello.Need(bufs))
		return inspectWaiting
	case errors.Is(err, clienthello.ErrTooLarge):
		return InspectTooLarge
	}
	return InspectBadHello
}

// routeTo sends s to route i's backend, or the default's for -1, and
// counts it; with no default backend the client is closed (no-route).
func (w *worker) routeTo(s *Session, i int) {
	fe := s.fe
	be := fe.be
	if i >= 0 {
		be = fe.routes[i].be
		w.routeHits[fe.hits+i]++
	} else {
		w.routeHits[fe.hits+len(fe.routes)]++
	}
	if be == nil {
		w.log.Debug("no route", "frontend", fe.cfg.Name, "client", s.peer)
		w.closeSession(s, ReasonNoRoute)
		return
	}
	s.be = be
	s.state = stConnecting
	w.assign(s, nil)
}

// keepName copies the SNI into s's name slot, when the worker keeps names.
func (w *worker) keepName(s *Session, name []byte) {
	if w.names == nil {
		return
	}
	s.nameLen = uint8(copy(w.names[int(s.idx)*nameSlot:int(s.idx+1)*nameSlot], name))
}

// name is the SNI s was routed by, valid until s is freed.
func (w *worker) name(s *Session) []byte {
	if s.nameLen == 0 {
		return nil
	}
	base := int(s.idx) * nameSlot
	return w.names[base : base+int(s.nameLen)]
}

// queuedBytes lists the bytes queued in ch, in order, as slices of their
// buffers, in the worker's scratch list (valid until the next call).
func (w *worker) queuedBytes(ch *channel) [][]byte {
	bufs := w.peek[:0]
	for id, k := ch.head, uint16(0); k < ch.n; id, k = w.segs[id].next, k+1 {
		seg := &w.segs[id]
		bufs = append(bufs, w.eng.Buffer(id)[seg.off:seg.off+seg.len])
	}
	return bufs
}

func queuedLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// leading copies the first bytes of bufs into dst, as many as fit: what
// protocol detection looks at.
func leading(dst []byte, bufs [][]byte) []byte {
	n := 0
	for _, b := range bufs {
		n += copy(dst[n:], b)
		if n == len(dst) {
			break
		}
	}
	return dst[:n]
}

// protoOutcome is the counter of a session routed on its protocol.
func protoOutcome(p route.Protocol) InspectOutcome {
	switch p {
	case route.TLS:
		return InspectTLS
	case route.HTTP:
		return InspectHTTP
	case route.SSH:
		return InspectSSH
	case route.None:
		return InspectNone
	}
	return InspectOther // Unknown is never counted: it waits, or is final as Other
}
