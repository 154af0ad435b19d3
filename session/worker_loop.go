package session

import (
	"time"

	"ringproxy/ring"
)

// maxSleep caps a loop's sleep so a missed wake costs at most this much.
const maxSleep = time.Second

// Complete implements ring.Handler. The clock is read once per batch: the
// loop may have slept, and activity and births must be stamped with the
// time they happened, not the time the loop went to sleep.
func (w *worker) Complete(batch []ring.Completion) {
	w.now = w.p.clock()
	w.cnt.Completions += uint64(len(batch))
	for i := range batch {
		w.complete(&batch[i])
	}
}

// complete routes a completion to its listener or session. A completion
// whose generation no longer matches its slot belongs to a session that
// has ended: it is dropped (its buffer, if any, goes back to the pool).
func (w *worker) complete(c *ring.Completion) {
	switch c.UD.Op() {
	case ring.OpAccept:
		w.onAccept(w.listeners[c.UD.Slot()], c)
		return
	case ring.OpWake:
		return // Turn reads the flags a wake announces
	case ring.OpCancelAccept:
		w.onAcceptCancel(w.listeners[c.UD.Slot()], c)
		return
	case ring.OpCancel:
		w.onSessionCancel(c)
		return
	}
	idx, p := splitSideSlot(c.UD.Slot())
	s := w.slab.At(idx)
	if s.gen != c.UD.Gen() || s.state == stFree {
		w.cnt.Late++
		if id, ok := c.Buffer(); ok {
			w.releaseBuf(id)
		}
		return
	}
	if !c.More() {
		s.inflight-- // a multishot receive is in flight until its last
	}
	if s.seenIn != w.activity.period {
		s.seenIn = w.activity.period
		w.activity.cur++
	}
	switch c.UD.Op() {
	case ring.OpRecv:
		w.onRecv(s, p, c)
	case ring.OpSend:
		w.onSend(s, p, c)
	case ring.OpConnect:
		w.onConnect(s, c)
	case ring.OpShutdown:
		w.onShutdown(s, p, c)
	case ring.OpSendBytes:
		w.onHeaderSent(s, c)
	case ring.OpPollIn:
		w.onPoll(s, p, false, c)
	case ring.OpPollOut:
		w.onPoll(s, p, true, c)
	}
	if s.state == stClosing && s.inflight == 0 {
		w.finalize(s)
	} else if checkSession != nil {
		checkSession(s)
	}
}

// checkSession, set by the tests only, looks at every session a
// completion touched once the completion is handled: the channel
// invariants (session_types.go) must hold then.
var checkSession func(*Session)

// Turn implements ring.Handler.
func (w *worker) Turn() (time.Duration, bool) {
	w.now = w.p.clock()
	w.cnt.Turns++
	w.countActive()
	w.signals()
	w.refillWaiters()
	if w.queueDue {
		w.serveQueues()
	}
	w.expireTimers()
	w.resumeListeners()
	if w.stopped && w.slab.InUse() == 0 && w.listenersClosed() {
		return 0, true
	}
	return w.sleep(), false
}

// countActive tells the engine its load: the sessions that had
// completions in the current activity period or the one before, and the
// completions per second of the last whole period. It waits for company
// only when they say some is coming soon.
func (w *worker) countActive() {
	a := &w.activity
	if p := uint32(w.now/int64(activityPeriod)) + 1; p != a.period {
		a.prev, a.perSecond = 0, 0
		if p == a.period+1 {
			a.prev = a.cur
			a.perSecond = int((w.cnt.Completions - a.from) * uint64(time.Second/activityPeriod))
		}
		a.period, a.cur, a.from = p, 0, w.cnt.Completions
	}
	if n := max(a.cur, a.prev); n != a.told || a.perSecond != a.toldRate {
		a.told, a.toldRate = n, a.perSecond
		w.eng.SetLoad(n, a.perSecond)
	}
}

// signals acts on what other goroutines asked through atomics.
func (w *worker) signals() {
	if w.statsReq.CompareAndSwap(true, false) {
		w.statsCh <- w.snapshot()
	}
	w.runControl()
	if w.p.stopping.Load() && !w.stopped {
		w.stop()
	}
	if w.p.killing.Load() && !w.killed {
		w.kill()
	}
	if w.slotFreed.Swap(false) {
		w.resumeDue = true
	}
	if w.adoptDue.Swap(false) {
		w.adoptClients()
	}
	if w.queueKick.Swap(false) {
		w.queueDue = true
	}
}

// refillWaiters re-arms every receive that found the pool empty once any
// buffer has come back. Counting buffers against waiters would strand
// waiters with data behind idle ones: a re-armed receive takes a buffer
// only when data arrives. One that finds the pool empty again queues again.
func (w *worker) refillWaiters() {
	if w.released == 0 {
		return
	}
	w.released = 0
	for n := w.bufWait.n; n > 0; n-- {
		if s, p, ok := w.waiter(w.bufWait.pop()); ok {
			s.chanFrom(p).recv = recvIdle
			w.armRecv(s, p)
		}
	}
}

// waiter resolves a buffer-wait entry, or says it is stale (its session
// ended, or the slot was reused).
func (w *worker) waiter(r chanRef) (*Session, side, bool) {
	idx, p := splitSideSlot(r.slot)
	s := w.slab.At(idx)
	ok := s.gen == r.gen && s.state != stFree && s.state != stClosing && s.chanFrom(p).recv == recvNoBuffer
	return s, p, ok
}

// waitForBuffer queues side p of s for refillWaiters. The queue holds two
// entries per slot, but entries of sessions that ended while waiting stay
// until popped: when it is full they are dropped first.
func (w *worker) waitForBuffer(s *Session, p side) {
	if w.bufWait.n == len(w.bufWait.q) {
		for n := w.bufWait.n; n > 0; n-- {
			if r := w.bufWait.pop(); w.validWaiter(r) {
				w.bufWait.push(r)
			}
		}
	}
	w.bufWait.push(chanRef{slot: sideSlot(s.idx, p), gen: s.gen})
}

func (w *worker) validWaiter(r chanRef) bool { _, _, ok := w.waiter(r); return ok }

func (w *worker) expireTimers() {
	for {
		s := w.timers.peek()
		if s == nil || s.timerAt > w.now {
			return
		}
		w.expire(s)
	}
}

func (w *worker) resumeListeners() {
	for _, l := range w.listeners {
		l.turnAccepts = 0
		if l.waiting() && l.retryAt <= w.now {
			w.resumeDue = true
		}
	}
	if !w.resumeDue {
		return
	}
	w.resumeDue = false
	w.waitSlot.Store(false)
	for _, l := range w.listeners {
		if l.waiting() || l.parked.n > 0 {
			w.resume(l)
		}
	}
}

// sleep is how long the loop may wait: until the next timer, or until a
// stopped listener looks again, and not at all when work is left for the next turn.
func (w *worker) sleep() time.Duration {
	if w.resumeDue || w.queueDue {
		return 0
	}
	d := maxSleep
	next := int64(-1)
	if s := w.timers.peek(); s != nil {
		next = s.timerAt
	}
	for _, l := range w.listeners {
		if l.waiting() && (next < 0 || l.retryAt < next) {
			next = l.retryAt
		}
	}
	if next >= 0 {
		if until := time.Duration(next - w.now); until < d {
			d = max(until, time.Millisecond)
		}
	}
	return d
}

func (w *worker) listenersClosed() bool {
	for _, l := range w.listeners {
		if l.state != liClosed {
			return false
		}
	}
	return true
}

// stop cancels the accepts; each listener closes once its accept has
// ended and its parked clients have sessions here, or in the generation
// that took over after a reload.
func (w *worker) stop() {
	w.stopped = true
	for _, l := range w.listeners {
		for l.parked.n > 0 && w.handOver(l, l.parked.peek()) {
			l.parked.pop()
		}
		w.stopAccept(l)
		w.rearm(l)
	}
}

// kill aborts every live session and closes the clients still parked:
// the grace period is over.
func (w *worker) kill() {
	w.killed = true
	for _, l := range w.listeners {
		for l.parked.n > 0 {
			ring.CloseNow(l.parked.peek())
			l.parked.pop()
			w.cnt.AcceptOutcomes[AcceptStopping]++
		}
		w.rearm(l)
	}
	for i := 0; i < w.slab.Cap(); i++ {
		if s := w.slab.At(uint32(i)); s.state != stFree {
			w.closeSession(s, ReasonKilled)
		}
	}
}
