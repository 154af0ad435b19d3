package session

import (
	"net/netip"

	"golang.org/x/sys/unix"

	"ringproxy/ring"
)

// startSession turns an admitted client fd into a session: read the
// client at once (its bytes queue in the request channel while the server
// connects) and start the connect.
func (w *worker) startSession(l *listener, fd int, peer netip.AddrPort) {
	idx, s, _ := w.slab.Get() // admit checked there is room
	*s = Session{gen: s.gen, idx: idx, heapIdx: -1, lst: l, fe: l.fe, be: l.fe.be}
	s.state = stConnecting
	s.si[clientSide] = streamInterface{fd: fd, state: siEst, lastAct: w.now}
	s.si[serverSide] = streamInterface{fd: -1, state: siIni}
	s.accepted = w.now
	s.peer = peer
	s.queueWait, s.connTime = -1, -1
	w.cnt.Accepted++
	w.feCnt[l.fe.idx].Sessions++
	w.cnt.AcceptOutcomes[AcceptOK]++
	w.p.noteConns(l.fe)
	if l.fe.cfg.AcceptProxy {
		s.state = stHeader
		w.armRecv(s, clientSide)
		w.schedule(s)
		return
	}
	w.pickBackend(s)
}

// armRecv queues a receive on side p unless its channel is full, shut, or
// waiting for buffers. A full channel is re-armed by its consumer's send.
// A multishot receive still armed is stopped instead once its channel is
// full or about to be spliced.
func (w *worker) armRecv(s *Session, p side) {
	ch := s.chanFrom(p)
	switch ch.recv {
	case recvArmed:
		if ch.n >= chanCap || ch.splice.mode == spliceWanted {
			w.stopRecv(s, p)
		}
		return
	case recvStopping, recvNoBuffer:
		return
	}
	if ch.fin.read() || ch.n >= chanCap || s.si[p].state != siEst || s.state == stClosing || ch.splice.mode == spliceOn {
		return
	}
	if ch.splice.mode == spliceWanted {
		if ch.n > 0 || ch.sendArmed {
			return // the buffers drain first; the last send comes back here
		}
		if w.startSplice(s, p) {
			return
		}
	}
	ch.recv = recvArmed
	s.inflight++
	w.eng.Recv(s.si[p].fd, s.tag(ring.OpRecv, p))
}

// stopRecv cancels side p's multishot receive. Its last completion
// (-ECANCELED, or bytes that beat the cancel) comes back to armRecv, which
// re-arms it once there is room again.
func (w *worker) stopRecv(s *Session, p side) {
	s.chanFrom(p).recv = recvStopping
	w.eng.CancelRequest(s.tag(ring.OpRecv, p), s.tag(ring.OpCancel, p))
}

// flush sends the head of the channel consumer c drains, or forwards the
// producer's FIN once the channel is empty.
func (w *worker) flush(s *Session, c side) {
	ch := s.chanTo(c)
	if ch.sendArmed || ch.fin >= finForwarding || s.si[c].state != siEst || s.state == stClosing {
		return
	}
	if c == serverSide && s.hdrPending {
		return // the PROXY header goes first
	}
	if ch.splice.mode == spliceOn && ch.splice.inPipe > 0 {
		return // pump sends it
	}
	if ch.n > 0 {
		seg := &w.segs[ch.head]
		ch.sendArmed = true
		s.inflight++
		w.eng.Send(s.si[c].fd, ch.head, int(seg.off), int(seg.len), s.tag(ring.OpSend, c))
		return
	}
	if ch.fin == finRead {
		ch.fin = finForwarding
		s.inflight++
		w.eng.Shutdown(s.si[c].fd, s.tag(ring.OpShutdown, c))
	}
}

// onRecv takes one completion of side p's receive. A multishot receive
// stays armed while c.More(); its last completion says why it ended.
func (w *worker) onRecv(s *Session, p side, c *ring.Completion) {
	ch := s.chanFrom(p)
	stopped := ch.recv == recvStopping
	if !c.More() {
		ch.recv = recvIdle
	}
	id, hasBuf := c.Buffer()
	if s.state == stClosing || c.Res <= 0 {
		if hasBuf {
			w.releaseBuf(id)
		}
	}
	switch {
	case s.state == stClosing:
	case s.state == stHeader && c.Res > 0 && hasBuf:
		w.onHeaderBytes(s, id, int(c.Res))
	case s.state == stHeader && c.Res == 0:
		w.badHeader(s, ProxyClosed)
	case s.state == stInspect && c.Res > 0 && hasBuf:
		w.onInspectBytes(s, id, int(c.Res))
	case s.state == stInspect && c.Res == 0:
		ch.fin = finRead
		w.inspect(s, true)
	case c.Res > 0 && hasBuf:
		w.push(ch, id, uint32(c.Res))
		s.si[p].lastAct = w.now
		w.noteFull(s, ch, c.Res)
		if ch.n == 1 && s.chanFrom(p.peer()).fin.read() {
			// The consumer had nothing to do since its FIN, so its
			// timeout was off; it starts now that it has bytes to take.
			s.si[p.peer()].lastAct = w.now
			w.schedule(s)
		}
		w.flush(s, p.peer())
		w.armRecv(s, p)
	case c.Res == 0:
		ch.fin = finRead
		w.flush(s, p.peer())
	case c.Res == -int32(unix.ECANCELED) && stopped:
		w.armRecv(s, p)
	case c.Res == -int32(unix.ENOBUFS):
		ch.recv = recvNoBuffer
		w.cnt.BufWaits++
		w.waitForBuffer(s, p)
	default:
		w.closeSession(s, sideError(p))
	}
}

func (w *worker) onSend(s *Session, c side, comp *ring.Completion) {
	ch := s.chanTo(c)
	ch.sendArmed = false
	if s.state == stClosing {
		return // the buffers still queued go back at finalize
	}
	if comp.Res < 0 {
		w.closeSession(s, sideError(c))
		return
	}
	n := uint32(comp.Res)
	seg := &w.segs[ch.head]
	seg.off += n
	seg.len -= n
	ch.bytes += uint64(n)
	s.si[c].lastAct = w.now
	if seg.len == 0 {
		w.popBuf(ch)
	}
	w.flush(s, c)
	w.armRecv(s, c.peer())
}

func (w *worker) onShutdown(s *Session, c side, comp *ring.Completion) {
	ch := s.chanTo(c)
	if s.state == stClosing {
		return
	}
	if comp.Res < 0 {
		w.closeSession(s, sideError(c))
		return
	}
	ch.fin = finForwarded
	if s.req.fin == finForwarded && s.rep.fin == finForwarded {
		w.closeSession(s, ReasonDone) // every byte delivered, both FINs forwarded
	}
}

func sideError(p side) Reason {
	if p == clientSide {
		return ReasonClientError
	}
	return ReasonServerError
}

func (w *worker) releaseBuf(id uint16) {
	w.eng.ReleaseBuffer(id)
	w.released++
}

// push queues buffer id, holding n bytes, at the tail of ch.
func (w *worker) push(ch *channel, id uint16, n uint32) {
	w.segs[id] = segment{len: n}
	if ch.n == 0 {
		ch.head = id
	} else {
		w.segs[ch.tail].next = id
	}
	ch.tail = id
	ch.n++
}

// popBuf drops the head of ch (n > 0) and returns its buffer to the pool.
func (w *worker) popBuf(ch *channel) {
	id := ch.head
	ch.head = w.segs[id].next
	ch.n--
	w.releaseBuf(id)
}

// closeSession ends s, cleanly (ReasonDone) or not: it stops everything
// in flight and finalizes once the last completion is in. The first
// reason given is the one kept.
func (w *worker) closeSession(s *Session, r Reason) {
	if s.state == stClosing || s.state == stFree {
		return
	}
	s.endPhase = '-'
	if r != ReasonDone {
		s.endPhase = phaseOf(s.state)
	}
	s.state = stClosing
	s.reason = r
	w.timers.remove(s)
	if s.inflight > 0 {
		for p := range s.si {
			if s.si[p].fd >= 0 {
				w.eng.CancelFd(s.si[p].fd, s.tag(ring.OpCancel, side(p)))
			}
		}
		return
	}
	w.finalize(s)
}

// onSessionCancel retries a cancel the engine could not queue (its
// submission queue stayed full): an aborted session would wait for
// requests nobody cancels and keep its slot, a timed-out connect would
// wait for the kernel's own timeout.
func (w *worker) onSessionCancel(c *ring.Completion) {
	if c.Res != -int32(unix.EBUSY) {
		return
	}
	idx, p := splitSideSlot(c.UD.Slot())
	s := w.slab.At(idx)
	if s.gen != c.UD.Gen() || s.si[p].fd < 0 {
		return
	}
	switch ch := s.chanFrom(p); {
	case s.state == stClosing || (p == serverSide && s.timedCn && s.si[p].state == siCon):
		w.eng.CancelFd(s.si[p].fd, c.UD)
	case ch.recv == recvStopping:
		w.eng.CancelRequest(s.tag(ring.OpRecv, p), c.UD)
	}
}

// finalize returns s to the slab: every request on it has completed.
// Only a clean end (both FINs forwarded) closes with FIN; any other end
// resets both sides, so that an abort reaches each peer as one (a
// truncated stream never looks complete) and no orphaned socket keeps
// unsent data in the kernel.
func (w *worker) finalize(s *Session) {
	for p := range s.si {
		switch fd := s.si[p].fd; {
		case fd < 0:
		case s.reason == ReasonDone:
			w.eng.Close(fd)
		default:
			w.eng.Reset(fd)
		}
		s.si[p].fd = -1
	}
	for _, ch := range []*channel{&s.req, &s.rep} {
		for ch.n > 0 {
			w.popBuf(ch)
		}
		if sp := &ch.splice; sp.mode == spliceOn {
			ring.CloseNow(int(sp.pipe[0]))
			ring.CloseNow(int(sp.pipe[1]))
			sp.mode = spliceOff
			w.p.pipes.Add(-1)
		}
	}
	w.cnt.Ended[s.reason]++
	fc := &w.feCnt[s.fe.idx]
	fc.Ended[s.reason]++
	fc.BytesIn += s.req.bytes
	fc.BytesOut += s.rep.bytes
	if s.srv != nil && s.connTime >= 0 {
		sc := &w.srvCnt[s.srv.gidx]
		sc.BytesIn += s.req.bytes
		sc.BytesOut += s.rep.bytes
	}
	w.cnt.BytesIn += s.req.bytes
	w.cnt.BytesOut += s.rep.bytes
	if w.p.cfg.Log.Access {
		w.accessLog(s)
	}
	w.leaveQueue(s)
	w.releaseServer(s)
	w.p.release(w, s.fe)
	s.state = stFree
	s.gen = (s.gen + 1) & ring.GenMask
	w.slab.Put(s.idx)
	if w.nFull > 0 {
		w.resumeDue = true
	}
}
