package session

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/ring"
)

// onAccept handles one completion of a listener's accept.
func (w *worker) onAccept(l *listener, c *ring.Completion) {
	if !c.More() {
		l.accept = acceptIdle
	}
	if c.Res < 0 {
		w.acceptError(l, c.Res)
	} else {
		w.acceptWorks(l)
		w.accepted(l, int(c.Res))
	}
	if l.accept == acceptIdle && w.stopped && !w.killed {
		w.sweep(l)
	}
	w.rearm(l)
}

// sweep takes the clients waiting in a stopped listener's backlog once
// its accept has ended. An io_uring accept waits on its socket
// exclusively: a wakeup our accept took as it was being cancelled is not
// passed on to the newer generation's accept on the same socket (see
// Inherit), and that client would wait unseen until another arrives.
func (w *worker) sweep(l *listener) {
	for l.parked.n < parkCap {
		fd, err := ring.AcceptNow(l.fd)
		if err != nil {
			return // EAGAIN, or an error the newer generation will meet too
		}
		w.accepted(l, fd)
	}
}

// accepted takes a client the kernel accepted. After stop it is still
// served: it completed its handshake before the accept was cancelled,
// and a reload must not refuse it. Only once the grace is over (killed)
// is it closed.
func (w *worker) accepted(l *listener, fd int) {
	if w.killed {
		ring.CloseNow(fd)
		w.cnt.AcceptOutcomes[AcceptStopping]++
		return
	}
	if l.parked.n > 0 || l.waiting() || l.turnAccepts >= w.p.cfg.Global.MaxAccept {
		w.park(l, fd)
		if !l.waiting() {
			w.resumeDue = true // past maxaccept: serve the rest next turn
		}
		if l.parked.n > w.p.cfg.Global.MaxAccept {
			w.stopAccept(l) // the kernel backlog holds the rest meanwhile
		}
		return
	}
	if v := w.admit(l, fd); v.result == limitedBy {
		w.park(l, fd)
		w.limit(l, v)
	}
}

// roomy says whether l may accept with a multishot accept. One hands
// over whatever its socket's backlog holds before a cancel can stop it,
// and a client accepted past a limit is parked holding an fd the fd
// budget (fdbudget.go) does not count. So multishot is for while the
// global and frontend limits have room for a full backlog on every
// socket that shares them; nearer a limit, accepts go one at a time and
// no more than one client per socket waits without a slot.
func (w *worker) roomy(l *listener) bool {
	if int64(w.p.cfg.Global.MaxConn)-w.p.actconn.Load() < int64(listenBacklog*w.p.sockets) {
		return false
	}
	fmax := int64(l.fe.cfg.MaxConn)
	return fmax == 0 || fmax-l.fe.cur.Load() >= int64(listenBacklog*l.fe.sockets)
}

func (w *worker) park(l *listener, fd int) {
	if w.stopped && w.handOver(l, fd) {
		return
	}
	if !l.parked.push(fd) {
		w.reject(l, fd, refusal(AcceptOverflow, errors.New("accepted connections waiting for a slot exceed the park queue")))
		return
	}
	w.cnt.Parked++
}

// setState moves l to st, keeping count of the full listeners: a session
// ending here frees a slot they wait for.
func (w *worker) setState(l *listener, st liState) {
	if l.state == liFull {
		w.nFull--
	}
	if st == liFull {
		w.nFull++
	}
	l.state = st
}

// limit stops l accepting until the limit v names passes. The accept is
// cancelled so new clients wait in the kernel backlog.
func (w *worker) limit(l *listener, v verdict) {
	w.stopAccept(l)
	if l.state == liPaused {
		return // an operator's pause outlasts any limit
	}
	if l.state == liLimited && l.limit == LimitSystem && l.retryAt > w.now {
		return // an fd shortage's pause is not cut short by another limit
	}
	if l.state == liReady || l.limit != v.limit {
		w.cnt.Paused[v.limit]++
	}
	l.limit = v.limit
	switch v.limit {
	case LimitRate:
		w.setState(l, liLimited)
		l.retryAt = w.now + int64(v.wait)
	case LimitSystem:
		w.setState(l, liLimited)
		l.retryAt = w.now + int64(systemPause)
	case LimitArena:
		w.setState(l, liFull) // only this worker's sessions free its slots
		l.retryAt = w.now + int64(limitRecheck)
	case LimitGlobal, LimitFrontend:
		w.setState(l, liFull)
		l.retryAt = w.now + int64(limitRecheck)
		// Another worker's session may free the slot: ask to be woken,
		// then look again in case it freed before we asked.
		w.waitSlot.Store(true)
		if w.p.actconn.Load() < int64(w.p.cfg.Global.MaxConn) && (l.fe.cfg.MaxConn == 0 || l.fe.cur.Load() < int64(l.fe.cfg.MaxConn)) {
			w.resumeDue = true
		}
	}
}

func (w *worker) pauseSystem(l *listener) { w.limit(l, limitedAt(LimitSystem, systemPause)) }

func (w *worker) stopAccept(l *listener) {
	if l.accept == acceptMulti || l.accept == acceptOne {
		l.accept = acceptCancelling
		w.eng.CancelRequest(l.tag(), ring.Pack(ring.OpCancelAccept, l.idx, 0))
	}
}

// onAcceptCancel retries a cancel the engine could not queue (its
// submission queue stayed full): left in flight, a stopped listener's
// accept would never end, and its worker never exit.
func (w *worker) onAcceptCancel(l *listener, c *ring.Completion) {
	if c.Res == -int32(unix.EBUSY) && l.accept == acceptCancelling {
		l.accept = acceptMulti
		w.stopAccept(l)
	}
}

func (w *worker) acceptError(l *listener, res int32) {
	if l.state == liPaused {
		return // the socket stopped listening under the accept
	}
	errno := unix.Errno(-res)
	switch errno {
	case unix.ECANCELED:
		return // our own pause or stop
	case unix.EAGAIN, unix.EINTR, unix.ECONNABORTED:
		w.cnt.AcceptErrors++
	default: // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unexpected
		w.cnt.AcceptErrors++
		if l.errBurst == 0 {
			w.log.Warn("accept failed, pausing listener and retrying every 100ms", "frontend", l.fe.cfg.Name, "bind", l.addr, "err", errno)
		}
		l.errBurst++
		l.lastErr = w.now
		w.pauseSystem(l)
	}
}

// errorBurstGap ends a burst of accept errors: a table that stays full
// lets an accept through now and then, which must not log a line a pause.
const errorBurstGap = time.Second

// acceptWorks ends an accept error burst once accepts have worked for
// errorBurstGap, saying so once.
func (w *worker) acceptWorks(l *listener) {
	if l.errBurst > 0 && w.now-l.lastErr >= int64(errorBurstGap) {
		w.log.Info("accepting again", "frontend", l.fe.cfg.Name, "bind", l.addr, "errors", l.errBurst)
		l.errBurst = 0
	}
}

// pauseListener stops l for an operator (disable frontend): its accept
// is cancelled, and the clients it parked are closed, as the kernel
// resets the ones in its backlog when the socket stops listening.
func (w *worker) pauseListener(l *listener) {
	if l.state == liClosed || l.state == liPaused {
		return
	}
	w.stopAccept(l)
	for l.parked.n > 0 {
		fd := l.parked.peek()
		l.parked.pop()
		w.reject(l, fd, refusal(AcceptDisabled, nil))
	}
	w.setState(l, liPaused)
}

// unpauseListener undoes pauseListener once the socket listens again.
func (w *worker) unpauseListener(l *listener) {
	if l.state != liPaused {
		return
	}
	w.setState(l, liReady)
	w.rearm(l)
}

// resume serves l's parked clients while the limits allow, then, once
// the limit that stopped l has passed, makes it ready and re-arms its
// accept.
func (w *worker) resume(l *listener) {
	for l.parked.n > 0 && l.turnAccepts < w.p.cfg.Global.MaxAccept && !w.killed {
		v := w.admit(l, l.parked.peek())
		if v.result == limitedBy {
			w.limit(l, v)
			return
		}
		l.parked.pop()
	}
	if l.parked.n > 0 {
		w.resumeDue = true // maxaccept reached this turn: go on next turn
		return
	}
	if l.state == liLimited && l.retryAt > w.now {
		return // a time limit: a freed slot changes nothing
	}
	if l.waiting() {
		w.setState(l, liReady)
	}
	w.rearm(l)
}

// rearm arms l's accept when nothing stops it, and closes the socket
// once a stopped worker's accept has ended and its parked clients are
// served. The close goes through the engine: the socket may live on in
// a newer generation (see Inherit).
func (w *worker) rearm(l *listener) {
	switch {
	case l.state == liClosed, l.accept != acceptIdle:
	case w.stopped && l.parked.n == 0:
		w.setState(l, liClosed)
		w.eng.Close(l.fd)
	case w.stopped, l.state != liReady, l.parked.n > 0:
	case w.roomy(l):
		l.accept = acceptMulti
		w.eng.Accept(l.fd, l.tag())
	default:
		l.accept = acceptOne
		w.eng.AcceptOne(l.fd, l.tag())
	}
}

func (q *fdQueue) push(fd int) bool {
	if q.n == parkCap {
		return false
	}
	q.fds[(q.head+q.n)%parkCap] = int32(fd)
	q.n++
	return true
}

func (q *fdQueue) peek() int { return int(q.fds[q.head]) }

func (q *fdQueue) pop() {
	q.head = (q.head + 1) % parkCap
	q.n--
}
