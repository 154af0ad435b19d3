package session

import (
	"math"
	"time"

	"ringproxy/ring"
)

// A session's timeouts. Each session has at most one entry in its
// worker's timer heap, keyed by its nearest deadline; what that deadline
// means is a timerAction, and only actEnd ends the session (with its
// Reason). Activity that only pushes a deadline later does not touch the
// heap: the key stays early, and when it fires the real deadline is
// recomputed and the entry moved.

// timerAction is what a session's timer does when it fires.
type timerAction uint8

const (
	actNone          timerAction = iota // nothing can time out
	actEnd                              // end the session with the timeout's Reason
	actHeaderLate                       // the PROXY header did not come in time
	actRetrySocket                      // our fd shortage backoff is over: connect again
	actConnectCancel                    // timeout_connect: cancel the connect, whose completion retries
	actQueueTimeout                     // no server slot within timeout_queue
	actInspectEnd                       // inspect_timeout: route on what arrived
)

// timeout is a session's next deadline and what it means.
type timeout struct {
	at     int64 // monotonic ns; math.MaxInt64 with actNone
	act    timerAction
	reason Reason // with actEnd
}

// deadline is when s times out next and what that would mean. While the
// server connects, timeout_connect and timeout_client race; once
// forwarding, each side has its own inactivity timeout, or the tunnel
// timeout covers both when set.
func (w *worker) deadline(s *Session) timeout {
	switch s.state { // no backend yet
	case stHeader:
		return timeout{at: s.accepted + int64(headerTimeout(s.fe.cfg)), act: actHeaderLate}
	case stInspect:
		return timeout{at: s.inspectAt + int64(s.fe.cfg.InspectTimeout), act: actInspectEnd}
	}
	fe, be := s.fe.cfg, s.be.cfg
	cli := &s.si[clientSide]
	srv := &s.si[serverSide]
	switch {
	case s.state == stQueued:
		return timeout{at: s.queuedAt + int64(queueTimeout(be)), act: actQueueTimeout}
	case s.backoffUntil != 0:
		if d := cli.lastAct + int64(fe.TimeoutClient); d < s.backoffUntil {
			return timeout{at: d, act: actEnd, reason: ReasonClientTimeout}
		}
		return timeout{at: s.backoffUntil, act: actRetrySocket}
	case s.state == stForwarding && be.TimeoutTunnel > 0:
		if cli.lastAct < srv.lastAct {
			return timeout{at: srv.lastAct + int64(be.TimeoutTunnel), act: actEnd, reason: ReasonClientTimeout}
		}
		return timeout{at: cli.lastAct + int64(be.TimeoutTunnel), act: actEnd, reason: ReasonServerTimeout}
	}
	t := timeout{at: math.MaxInt64}
	if waitingOn(&s.req, &s.rep) {
		t = timeout{at: cli.lastAct + int64(fe.TimeoutClient), act: actEnd, reason: ReasonClientTimeout}
	}
	switch srv.state {
	case siCon:
		if d := s.connAt + int64(be.TimeoutConnect); d < t.at {
			t = timeout{at: d, act: actConnectCancel}
		}
	case siEst:
		if d := srv.lastAct + int64(be.TimeoutServer); d < t.at && waitingOn(&s.rep, &s.req) {
			t = timeout{at: d, act: actEnd, reason: ReasonServerTimeout}
		}
	}
	return t
}

// waitingOn says whether a side can be idle: it may still send (from, its
// produced channel, has no FIN) or has bytes to take (to, its consumed
// channel, is not empty). As in HAProxy, a side that has sent its FIN and
// has nothing queued for it cannot time out; only its peer can.
func waitingOn(from, to *channel) bool { return !from.fin.read() || to.pending() }

// schedule makes sure the timer fires no later than s's deadline. Only
// moves that bring the deadline nearer need it: activity that pushes the
// deadline later is found when the early timer fires.
func (w *worker) schedule(s *Session) {
	if t := w.deadline(s); s.heapIdx < 0 || t.at < s.timerAt {
		w.timers.set(s, t.at)
	}
}

// expire handles s's timer: re-arm it if activity moved the deadline,
// else act on it.
func (w *worker) expire(s *Session) {
	t := w.deadline(s)
	if t.at > w.now {
		w.timers.set(s, t.at)
		return
	}
	w.timers.remove(s)
	switch t.act {
	case actHeaderLate:
		w.badHeader(s, ProxyTimeout)
	case actInspectEnd:
		w.inspect(s, true)
	case actRetrySocket:
		s.backoffUntil = 0
		w.connect(s)
	case actConnectCancel:
		s.timedCn = true
		w.cnt.ConnTimeouts++
		w.eng.CancelFd(s.si[serverSide].fd, s.tag(ring.OpCancel, serverSide))
	case actQueueTimeout:
		w.log.Warn("queue timeout", "backend", s.be.cfg.Name, "waited", time.Duration(w.now-s.queuedAt))
		w.closeSession(s, ReasonQueueTimeout)
	case actEnd:
		w.closeSession(s, t.reason)
	}
}

// timerHeap is a worker's min-heap of sessions keyed by Session.timerAt.
// A session is in it at most once (heapIdx >= 0). Activity that only
// pushes a deadline later does not touch the heap: the key stays early,
// and when it fires the session's real deadline is recomputed and the
// entry moved. So forwarding a buffer costs no heap work.
type timerHeap struct {
	h []*Session // capacity fixed at start: one entry per slab slot
}

func newTimerHeap(n int) timerHeap { return timerHeap{h: make([]*Session, 0, n)} }

func (t *timerHeap) len() int { return len(t.h) }

// peek is the session with the earliest key, or nil.
func (t *timerHeap) peek() *Session {
	if len(t.h) == 0 {
		return nil
	}
	return t.h[0]
}

// set puts s in the heap with key at, or moves it there.
func (t *timerHeap) set(s *Session, at int64) {
	if s.heapIdx < 0 {
		s.timerAt = at
		s.heapIdx = int32(len(t.h))
		t.h = append(t.h, s)
		t.up(int(s.heapIdx))
		return
	}
	old := s.timerAt
	s.timerAt = at
	if at < old {
		t.up(int(s.heapIdx))
	} else {
		t.down(int(s.heapIdx))
	}
}

// remove takes s out of the heap if it is there.
func (t *timerHeap) remove(s *Session) {
	i := int(s.heapIdx)
	if i < 0 {
		return
	}
	last := len(t.h) - 1
	t.swap(i, last)
	t.h[last] = nil
	t.h = t.h[:last]
	s.heapIdx = -1
	if i < last {
		t.down(i)
		t.up(i)
	}
}

func (t *timerHeap) less(i, j int) bool { return t.h[i].timerAt < t.h[j].timerAt }

func (t *timerHeap) swap(i, j int) {
	t.h[i], t.h[j] = t.h[j], t.h[i]
	t.h[i].heapIdx = int32(i)
	t.h[j].heapIdx = int32(j)
}

func (t *timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *timerHeap) down(i int) {
	n := len(t.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.less(r, l) {
			m = r
		}
		if !t.less(m, i) {
			return
		}
		t.swap(i, m)
		i = m
	}
}
