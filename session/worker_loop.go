package session

import (
	"time"

	"ringproxy/ring"
)

// maxSleep caps a loop's sleep so a missed wake costs at most this much.
const maxSleep = time.Second

// Complete implements ring.Handler: route a completion to its listener or
// session. A completion whose generation no longer matches its slot
// belongs to a session that has ended: it is dropped (its buffer, if any,
// goes back to the pool).
func (w *worker) Complete(c *ring.Completion) {
	switch c.UD.Op() {
	case ring.OpAccept:
		w.onAccept(w.listeners[c.UD.Slot()], c)
		return
	case ring.OpWake, ring.OpCancel:
		return // Turn reads the flags a wake announces
	}
	s := w.slab.At(c.UD.Slot() >> 1)
	if s.gen != c.UD.Gen() || s.state == stFree {
		w.cnt.Late++
		if id, ok := c.Buffer(); ok {
			w.releaseBuf(id)
		}
		return
	}
	s.inflight--
	p := side(c.UD.Slot() & 1)
	switch c.UD.Op() {
	case ring.OpRecv:
		w.onRecv(s, p, c)
	case ring.OpSend:
		w.onSend(s, p, c)
	case ring.OpConnect:
		w.onConnect(s, c)
	case ring.OpShutdown:
		w.onShutdown(s, p, c)
	}
	if s.state == stClosing && s.inflight == 0 {
		w.finalize(s)
	}
}

// Turn implements ring.Handler.
func (w *worker) Turn() (time.Duration, bool) {
	w.now = w.p.clock()
	w.signals()
	w.refillWaiters()
	w.expireTimers()
	w.resumeListeners()
	if w.stopped && w.slab.InUse() == 0 && w.listenersClosed() {
		return 0, true
	}
	return w.sleep(), false
}

// signals acts on what other goroutines asked through atomics.
func (w *worker) signals() {
	if w.statsReq.CompareAndSwap(true, false) {
		w.statsCh <- w.cnt
	}
	if w.p.stopping.Load() && !w.stopped {
		w.stop()
	}
	if w.p.killing.Load() && !w.killed {
		w.kill()
	}
	if w.slotFreed.Swap(false) {
		w.resumeDue = true
	}
}

// refillWaiters re-arms receives that found the pool empty, as many as
// buffers came back this turn.
func (w *worker) refillWaiters() {
	for w.released > 0 && w.bufWait.n > 0 {
		r := w.bufWait.pop()
		s := w.slab.At(r.slot >> 1)
		p := side(r.slot & 1)
		if s.gen != r.gen || s.state == stFree || s.state == stClosing {
			continue
		}
		s.chanFrom(p).needBuf = false
		w.armRecv(s, p)
		w.released--
	}
	w.released = 0
}

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
		if l.pausedUntil != 0 && l.pausedUntil <= w.now {
			w.resumeDue = true
		}
	}
	if !w.resumeDue {
		return
	}
	w.resumeDue = false
	w.waitSlot.Store(false)
	for _, l := range w.listeners {
		if l.limited || l.parked.n > 0 || l.pausedUntil != 0 {
			w.resume(l)
		}
	}
}

// sleep is how long the loop may wait: until the next timer or listener
// pause ends, and not at all when work is left for the next turn.
func (w *worker) sleep() time.Duration {
	if w.resumeDue {
		return 0
	}
	d := maxSleep
	next := int64(-1)
	if s := w.timers.peek(); s != nil {
		next = s.timerAt
	}
	for _, l := range w.listeners {
		if l.pausedUntil != 0 && (next < 0 || l.pausedUntil < next) {
			next = l.pausedUntil
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
		if !l.closed {
			return false
		}
	}
	return true
}

// stop closes the listeners: parked clients are closed, accepts cancelled.
func (w *worker) stop() {
	w.stopped = true
	for _, l := range w.listeners {
		for l.parked.n > 0 {
			ring.CloseNow(l.parked.peek())
			l.parked.pop()
			w.cnt.AcceptOutcomes[AcceptStopping]++
		}
		w.stopAccept(l)
		w.rearm(l)
	}
}

// kill aborts every live session: the grace period is over.
func (w *worker) kill() {
	w.killed = true
	for i := 0; i < w.slab.Cap(); i++ {
		if s := w.slab.At(uint32(i)); s.state != stFree {
			w.abort(s, ReasonKilled)
		}
	}
}
