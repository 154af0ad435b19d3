package session

import (
	"errors"
	"net/netip"
	"time"

	"ringproxy/ring"
	"ringproxy/session/proxyproto"
)

// PROXY protocol. With accept_proxy a session starts in stHeader: it reads
// the client until a complete header, with a short timeout, before it
// does anything else. The address the header carries is then the client
// address for everything after: the source checks (allow/deny,
// per_source_rate, skipped at accept for such frontends since the peer is
// the upstream balancer), source balancing, logs and send_proxy.
//
// With send_proxy the header goes to the server before any client byte:
// it is written from the worker's header area (one small slot per
// session), and the request channel waits until it is out. A v2 header
// carries the SNI the session was routed by, as HAProxy's does.

// maxHeaderTimeout caps the wait for a PROXY header: an upstream balancer
// sends it at once, so a client that does not is not one.
const maxHeaderTimeout = 3 * time.Second

// hdrSlot is the size of a session's slot in the worker's header area: a
// v1 header is at most 107 bytes, a v2 one for IPv6 52. With routes on
// the SNI a v2 header may carry it (an authority TLV): hdrSlotName.
const (
	hdrSlot     = 108
	hdrSlotName = hdrSlot + 3 + nameSlot
)

func headerTimeout(fe *Frontend) time.Duration {
	return min(fe.TimeoutClient, maxHeaderTimeout)
}

// proxyReasonOf is the counter of a parser reason: the parser's come
// before ProxyTimeout. An unknown one counts as not-proxy.
func proxyReasonOf(reason string) ProxyReason {
	for i, r := range proxyReasonNames[:ProxyTimeout] {
		if r == reason {
			return ProxyReason(i)
		}
	}
	return ProxyNotProxy
}

// onHeaderBytes takes bytes received while waiting for a PROXY header.
// A header is far shorter than a buffer, so bytes of a later receive are
// moved behind the first buffer's as far as they fit (appendBytes): the
// parser always sees one slice. What does not fit stays queued in its own buffer behind
// the first, in order; a header still incomplete then is longer than a
// buffer.
func (w *worker) onHeaderBytes(s *Session, id uint16, n int) {
	ch := &s.req
	if ch.n == 0 {
		w.push(ch, id, uint32(n))
	} else {
		w.appendBytes(ch, id, n)
	}
	seg := &w.segs[ch.head]
	hdr, used, err := proxyproto.Parse(w.eng.Buffer(ch.head)[seg.off : seg.off+seg.len])
	switch {
	case errors.Is(err, proxyproto.ErrIncomplete) && ch.n > 1:
		w.badHeader(s, ProxyTooLong)
	case errors.Is(err, proxyproto.ErrIncomplete):
		w.armRecv(s, clientSide)
	case err != nil:
		var pe *proxyproto.Error
		errors.As(err, &pe) // Parse's only other error
		w.badHeader(s, proxyReasonOf(pe.Reason))
	default:
		w.headerDone(s, hdr, used)
	}
}

// appendBytes moves the n bytes of buffer id behind those of the
// channel's last buffer, as many as fit, and queues the rest.
func (w *worker) appendBytes(ch *channel, id uint16, n int) {
	seg := &w.segs[ch.tail]
	end := seg.off + seg.len
	moved := copy(w.eng.Buffer(ch.tail)[end:], w.eng.Buffer(id)[:n])
	seg.len += uint32(moved)
	if moved == n {
		w.releaseBuf(id)
		return
	}
	w.push(ch, id, uint32(n-moved))
	w.segs[id].off = uint32(moved)
}

// headerDone consumes the header and goes on as if the session had just
// been accepted from the address it carries.
func (w *worker) headerDone(s *Session, hdr proxyproto.Header, used int) {
	seg := &w.segs[s.req.head]
	seg.off += uint32(used)
	seg.len -= uint32(used)
	if seg.len == 0 {
		w.popBuf(&s.req)
	}
	if hdr.Command == proxyproto.Proxy && hdr.Src.IsValid() {
		s.peer = netip.AddrPortFrom(hdr.Src.Addr().Unmap(), hdr.Src.Port())
	}
	if why, ok := w.sourceAllowed(s.fe, s.peer.Addr()); !ok {
		w.cnt.AcceptOutcomes[why]++
		w.feCnt[s.fe.idx].Refused++
		w.closeSession(s, ReasonDenied)
		return
	}
	w.pickBackend(s)
}

// badHeader ends a session whose header is missing, malformed or late.
func (w *worker) badHeader(s *Session, why ProxyReason) {
	w.cnt.ProxyErrors[why]++
	w.log.Debug("bad PROXY header", "frontend", s.fe.cfg.Name, "client", s.peer, "reason", why.String())
	w.closeSession(s, ReasonBadProxy)
}

// sendProxyHeader writes the PROXY header for s to its server, before any
// client byte, from the session's slot in the worker's header area.
func (w *worker) sendProxyHeader(s *Session) {
	// The bind address is the destination the client used, unless the
	// bind is a wildcard: then the socket knows.
	dst := s.lst.addr
	if dst.Addr().IsUnspecified() {
		if a, err := ring.LocalAddr(s.si[clientSide].fd); err == nil {
			dst = a
		}
	}
	base := int(s.idx) * w.hdrSlot
	slot := w.hdrs[base : base : base+w.hdrSlot]
	var b []byte
	if s.be.cfg.SendProxy == "v2" {
		b = proxyproto.AppendV2Authority(slot, s.peer, dst, w.name(s))
	} else {
		b = proxyproto.AppendV1(slot, s.peer, dst)
	}
	s.hdrOff, s.hdrLen = 0, uint16(len(b))
	s.hdrPending = true
	w.sendHeaderRest(s)
}

func (w *worker) sendHeaderRest(s *Session) {
	base := int(s.idx) * w.hdrSlot
	s.inflight++
	w.eng.SendBytes(s.si[serverSide].fd, w.hdrs[base+int(s.hdrOff):base+int(s.hdrLen)], s.tag(ring.OpSendBytes, serverSide))
}

func (w *worker) onHeaderSent(s *Session, c *ring.Completion) {
	if s.state == stClosing {
		return
	}
	if c.Res < 0 {
		w.closeSession(s, ReasonServerError)
		return
	}
	s.hdrOff += uint16(c.Res)
	if s.hdrOff < s.hdrLen {
		w.sendHeaderRest(s)
		return
	}
	s.hdrPending = false
	w.flush(s, serverSide)
}
