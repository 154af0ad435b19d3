package session

import "time"

// Queueing. A server's maxconn counts sessions in the whole process: the
// slot count is one shared atomic per server (server.cur), reserved before
// a connect and released when the session ends or leaves the server.
// Sessions that find every candidate server full wait in their worker's
// FIFO for the backend. A worker that frees a slot serves its own queue
// first; if it has no waiter, it wakes the workers that have some, which
// then race for the slot through the same reservation. So limits are
// exact process-wide, and order is FIFO within a worker (across workers
// it is by wakeup).
//
// A queued session holds no buffer: its client is not read until a server
// is assigned, so its bytes wait in the kernel.

// queueTimeout is how long s may wait for a slot: timeout_queue, or
// timeout_connect when that is unset, as HAProxy does.
func queueTimeout(be *Backend) time.Duration {
	if be.TimeoutQueue > 0 {
		return be.TimeoutQueue
	}
	return be.TimeoutConnect
}

// assign gives s a server with a free slot and starts its connect, or
// queues s when every candidate is full. avoid is a server to leave if
// another can take s (redispatch).
func (w *worker) assign(s *Session, avoid *server) {
	srv, usable := s.be.pickFree(s.peer.Addr(), avoid)
	s.queueWait = max(s.queueWait, 0) // it reached the queue stage (Tw 0, not -1)
	if !usable {
		w.noServer(s)
		return
	}
	if srv == nil {
		w.enqueue(s)
		return
	}
	s.srv = srv
	w.p.hist.slotTaken(srv)
	w.armRecv(s, clientSide)
	w.connect(s)
}

// noServer ends s at once: no server of its backend takes new sessions
// (all down, or every weight 0), and a client left waiting would only
// time out later.
func (w *worker) noServer(s *Session) {
	w.log.Warn("no server available", "backend", s.be.cfg.Name, "client", s.peer)
	w.closeSession(s, ReasonNoServer)
}

func (w *worker) enqueue(s *Session) {
	s.state = stQueued
	s.queuedAt = w.now
	s.inQueue = true
	n := s.be.queued.Add(1)
	s.queueAhead = int32(n - 1)
	w.p.hist.queued(s.be, n)
	w.queued.Add(1)
	w.cnt.Queued++
	q := &w.queues[s.be.idx]
	if q.n == len(q.q) {
		w.compactQueue(q)
	}
	q.push(chanRef{slot: sideSlot(s.idx, clientSide), gen: s.gen})
	w.schedule(s)
}

// leaveQueue is called when s stops waiting, served or not.
func (w *worker) leaveQueue(s *Session) {
	if !s.inQueue {
		return
	}
	s.inQueue = false
	s.be.queued.Add(-1)
	w.p.hist.release(s.be)
	w.queued.Add(-1)
	w.cnt.QueueWaitNs += uint64(w.now - s.queuedAt)
	s.queueWait = max(s.queueWait, 0) + w.now - s.queuedAt
}

// queuedSession resolves a queue entry, or says it is stale.
func (w *worker) queuedSession(r chanRef) (*Session, bool) {
	idx, _ := splitSideSlot(r.slot)
	s := w.slab.At(idx)
	return s, s.gen == r.gen && s.inQueue && s.state == stQueued
}

func (w *worker) compactQueue(q *chanQueue) {
	for n := q.n; n > 0; n-- {
		if r := q.pop(); w.validQueued(r) {
			q.push(r)
		}
	}
}

func (w *worker) validQueued(r chanRef) bool { _, ok := w.queuedSession(r); return ok }

// serveQueue hands free slots of be to this worker's waiters, oldest first.
func (w *worker) serveQueue(be *backend) {
	q := &w.queues[be.idx]
	for q.n > 0 {
		s, ok := w.queuedSession(q.q[q.head])
		if !ok {
			q.pop()
			continue
		}
		srv, usable := be.pickFree(s.peer.Addr(), nil)
		if usable && srv == nil {
			return // still full: the next freed slot comes back here
		}
		q.pop()
		w.leaveQueue(s)
		if !usable {
			w.noServer(s)
			continue
		}
		s.state = stConnecting
		s.srv = srv
		w.p.hist.slotTaken(srv)
		w.armRecv(s, clientSide)
		w.connect(s)
	}
}

// releaseServer gives back s's slot on its server and lets a waiter, here
// or in another worker, take it.
func (w *worker) releaseServer(s *Session) {
	srv := s.srv
	if srv == nil {
		return
	}
	s.srv, s.srvAddr = nil, nil
	srv.cur.Add(-1)
	w.p.hist.release(srv.be)
	waiting := srv.be.queued.Load()
	if waiting == 0 {
		return
	}
	if w.queues[srv.be.idx].n > 0 {
		w.queueDue = true
	}
	if waiting > w.queued.Load() {
		w.p.kickQueues(w) // waiters elsewhere race for the slot too
	}
}

// serveQueues runs when a slot may have freed: this worker's or another's.
func (w *worker) serveQueues() {
	w.queueDue = false
	for i := range w.queues {
		if w.queues[i].n > 0 {
			w.serveQueue(w.p.bes[i])
		}
	}
}
