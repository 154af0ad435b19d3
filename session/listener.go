package session

import (
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/ring"
)

// parkCap bounds the accepted fds a listener holds while it is limited or
// past maxaccept for this turn. A multishot accept may hand over the whole
// kernel backlog (listenBacklog) before a cancel lands; those connections
// wait here, connected but unserved, as they would have in the backlog.
const parkCap = 2 * listenBacklog

// systemPause is how long a listener rests after EMFILE, ENFILE, ENOMEM,
// ENOBUFS or an fd above maxsock, as HAProxy does.
const systemPause = 100 * time.Millisecond

// limitRecheck bounds how long a listener stopped by a shared limit waits
// if it missed the wakeup of a freed slot (a slot reserved and given back
// by another worker within a race window wakes nobody), as HAProxy's 1 s
// timer for configured limits does.
const limitRecheck = time.Second

// listener is one worker's SO_REUSEPORT socket for one bind of a frontend.
type listener struct {
	idx         uint32 // index in worker.listeners, the accept's slot
	fe          *frontend
	fd          int
	addr        netip.AddrPort
	armed       bool  // an accept in flight
	one         bool  // that accept is single-shot (see roomy)
	cancelling  bool  // its cancel is in flight
	limited     bool  // stopped by a limit; resumes when a slot frees
	pausedUntil int64 // system pause end (monotonic ns); 0 = none
	closed      bool
	turnAccepts int    // sessions started this loop turn (maxaccept)
	errBurst    uint64 // accept errors in the current burst (see errorBurstGap)
	lastErr     int64  // monotonic ns of the last accept error
	parked      fdQueue
}

func (l *listener) tag() ring.UserData { return ring.Pack(ring.OpAccept, l.idx, 0) }

// fdQueue is a fixed FIFO of accepted fds.
type fdQueue struct {
	fds     [parkCap]int32
	head, n int
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

type admitResult uint8

const (
	admitted  admitResult = iota
	rejected              // closed and counted
	limitedBy             // a limit stands: the fd must wait
)

// onAccept handles one completion of a listener's multishot accept.
func (w *worker) onAccept(l *listener, c *ring.Completion) {
	if !c.More() {
		l.armed, l.cancelling = false, false
	}
	if c.Res < 0 {
		w.acceptError(l, c.Res)
	} else {
		w.acceptWorks(l)
		w.accepted(l, int(c.Res))
	}
	if !l.armed && w.stopped && !w.killed {
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
	if l.parked.n > 0 || l.limited || l.turnAccepts >= w.p.cfg.Global.MaxAccept {
		w.park(l, fd)
		if !l.limited {
			w.resumeDue = true // past maxaccept: serve the rest next turn
		}
		if l.parked.n > w.p.cfg.Global.MaxAccept {
			w.stopAccept(l) // the kernel backlog holds the rest meanwhile
		}
		return
	}
	if r, why := w.admit(l, fd); r == limitedBy {
		w.park(l, fd)
		w.limit(l, why)
	}
}

// admit runs the accept-time checks in DESIGN.md's order and starts a
// session, or says which limit stands. Reservations are rolled back on
// every exit but success.
func (w *worker) admit(l *listener, fd int) (admitResult, Limit) {
	// Look before reserving, so that a reservation given back (which
	// wakes nobody) is rare: only a race between two workers makes one.
	if lim := l.fe.cfg.RateLimit; lim > 0 {
		if ok, wait := l.fe.rate.take(w.now, lim); !ok {
			w.rateWait = wait
			return limitedBy, LimitRate
		}
	}
	gmax, fmax := int64(w.p.cfg.Global.MaxConn), int64(l.fe.cfg.MaxConn)
	if w.p.actconn.Load() >= gmax {
		return limitedBy, LimitGlobal
	}
	if fmax > 0 && l.fe.cur.Load() >= fmax {
		return limitedBy, LimitFrontend
	}
	// The frontend's slot first: a global slot held for a moment by a
	// session its frontend then refuses would show in max_sessions.
	if !reserve(&l.fe.cur, fmax) {
		return limitedBy, LimitFrontend
	}
	if !reserve(&w.p.actconn, gmax) {
		l.fe.cur.Add(-1)
		return limitedBy, LimitGlobal
	}
	if w.p.maxsock > 0 && fd >= w.p.maxsock {
		w.unreserve(l)
		w.reject(l, fd, AcceptMaxSock, nil)
		w.pauseSystem(l)
		return rejected, 0
	}
	if !w.p.optsOnListener { // else fd has its listener's
		if err := l.fe.opts.Apply(fd); err != nil {
			w.unreserve(l)
			w.reject(l, fd, AcceptSockOpt, err)
			return rejected, 0
		}
	}
	var peer netip.AddrPort
	if l.fe.needsPeer() || w.p.cfg.Log.Access || l.fe.be.sticky {
		peer, _ = ring.PeerAddr(fd)
	}
	if why, ok := w.sourceAllowed(l.fe, peer.Addr()); !ok && !l.fe.cfg.AcceptProxy {
		w.unreserve(l)
		w.reject(l, fd, why, nil)
		return rejected, 0
	}
	if w.slab.InUse() == w.slab.Cap() {
		w.unreserve(l)
		return limitedBy, LimitArena
	}
	l.turnAccepts++
	w.startSession(l, fd, peer)
	if l.armed && !l.one && !w.roomy(l) {
		w.stopAccept(l) // its last completion re-arms it single-shot
	}
	return admitted, 0
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

func (w *worker) reject(l *listener, fd int, why AcceptOutcome, err error) {
	ring.CloseNow(fd)
	w.cnt.AcceptOutcomes[why]++
	w.feCnt[l.fe.idx].Refused++
	if err != nil {
		w.log.Warn("accept rejected", "frontend", l.fe.cfg.Name, "bind", l.addr, "reason", why.String(), "err", err)
	}
}

func (w *worker) park(l *listener, fd int) {
	if w.stopped && w.handOver(l, fd) {
		return
	}
	if !l.parked.push(fd) {
		w.reject(l, fd, AcceptOverflow, errors.New("accepted connections waiting for a slot exceed the park queue"))
		return
	}
	w.cnt.Parked++
}

// limit stops l accepting until a slot frees. The multishot accept is
// cancelled so new clients wait in the kernel backlog.
func (w *worker) limit(l *listener, why Limit) {
	if !l.limited {
		l.limited = true
		w.nLimited++
		w.cnt.Paused[why]++
	}
	w.stopAccept(l)
	if why == LimitRate {
		if at := w.now + int64(w.rateWait); w.recheckAt <= w.now || at < w.recheckAt {
			w.recheckAt = at
		}
		return
	}
	if why == LimitGlobal || why == LimitFrontend {
		w.recheckAt = w.now + int64(limitRecheck)
		// Another worker's session may free the slot: ask to be woken,
		// then look again in case it freed before we asked.
		w.waitSlot.Store(true)
		if w.p.actconn.Load() < int64(w.p.cfg.Global.MaxConn) && (l.fe.cfg.MaxConn == 0 || l.fe.cur.Load() < int64(l.fe.cfg.MaxConn)) {
			w.resumeDue = true
		}
	}
}

func (w *worker) stopAccept(l *listener) {
	if l.armed && !l.cancelling {
		l.cancelling = true
		w.eng.CancelRequest(l.tag(), ring.Pack(ring.OpCancelAccept, l.idx, 0))
	}
}

// onAcceptCancel retries a cancel the engine could not queue (its
// submission queue stayed full): left armed, a stopped listener would
// never close and its worker never exit.
func (w *worker) onAcceptCancel(l *listener, c *ring.Completion) {
	if c.Res == -int32(unix.EBUSY) && l.cancelling {
		l.cancelling = false
		w.stopAccept(l)
	}
}

func (w *worker) pauseSystem(l *listener) {
	if l.pausedUntil == 0 {
		w.cnt.Paused[LimitSystem]++
	}
	l.pausedUntil = w.now + int64(systemPause)
	w.stopAccept(l)
}

func (w *worker) acceptError(l *listener, res int32) {
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

// resume serves l's parked fds while the limits allow, then re-arms its
// accept if nothing stands in the way.
func (w *worker) resume(l *listener) {
	if l.pausedUntil != 0 && l.pausedUntil <= w.now {
		l.pausedUntil = 0
	}
	for l.parked.n > 0 && l.turnAccepts < w.p.cfg.Global.MaxAccept && !w.killed {
		r, why := w.admit(l, l.parked.peek())
		if r == limitedBy {
			w.limit(l, why)
			return
		}
		l.parked.pop()
	}
	if l.parked.n > 0 {
		w.resumeDue = true // maxaccept reached this turn: go on next turn
		return
	}
	if l.limited {
		l.limited = false
		w.nLimited--
	}
	w.rearm(l)
}

// rearm arms l's multishot accept when nothing stops it, and closes the
// socket once a stopped listener's accept has ended and its parked
// clients are served. The close goes through the engine: the socket may
// live on in a newer generation (see Inherit).
func (w *worker) rearm(l *listener) {
	switch {
	case l.closed || l.armed:
	case w.stopped && l.parked.n == 0:
		l.closed = true
		w.eng.Close(l.fd)
	case w.stopped, l.limited, l.pausedUntil != 0, l.parked.n > 0:
	case w.roomy(l):
		l.armed, l.one = true, false
		w.eng.Accept(l.fd, l.tag())
	default:
		l.armed, l.one = true, true
		w.eng.AcceptOne(l.fd, l.tag())
	}
}
