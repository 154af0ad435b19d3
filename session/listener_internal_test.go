package session

import (
	"testing"
	"time"

	"ringproxy/ring"
)

// The listener's transitions, one by one, as listener_types.go draws
// them: what each limit stops, what lifts it, and what it arms then.
func TestListenerStates(t *testing.T) {
	w, eng, _ := fakeWorker(t)
	l := w.listeners[0]
	w.p.cfg.Global.MaxConn, w.p.sockets = 1<<20, 1 // roomy: ready listeners arm multishot
	want := func(st liState, acc acceptState, why string) {
		t.Helper()
		if l.state != st || l.accept != acc {
			t.Fatalf("%s: state %d, accept %d; want %d, %d", why, l.state, l.accept, st, acc)
		}
	}
	endAccept := func() { // the cancelled accept's last completion
		w.onAccept(l, &ring.Completion{UD: l.tag(), Res: -125 /* ECANCELED */})
	}

	w.rearm(l)
	want(liReady, acceptMulti, "ready")

	// Rate: a time limit that a freed slot does not lift.
	w.limit(l, limitedAt(LimitRate, 50*time.Millisecond))
	want(liLimited, acceptCancelling, "over the rate")
	endAccept()
	want(liLimited, acceptIdle, "over the rate, accept ended")
	w.resume(l)
	want(liLimited, acceptIdle, "over the rate, resumed early")
	if l.retryAt != w.now+int64(50*time.Millisecond) || w.sleep() > 50*time.Millisecond {
		t.Fatalf("rate limit: retryAt in %v, loop sleeps %v; want both 50ms", time.Duration(l.retryAt-w.now), w.sleep())
	}
	w.now = l.retryAt
	w.resume(l)
	want(liReady, acceptMulti, "rate passed")

	// Global maxconn: a slot limit, woken by any worker freeing a slot.
	w.limit(l, limitedAt(LimitGlobal, 0))
	endAccept()
	want(liFull, acceptIdle, "global maxconn")
	if w.nFull != 1 || !w.waitSlot.Load() {
		t.Fatalf("full listener: nFull %d, waitSlot %v; want 1, true", w.nFull, w.waitSlot.Load())
	}
	// An fd shortage meanwhile pauses it for systemPause, and another
	// limit does not cut that pause short.
	w.pauseSystem(l)
	want(liLimited, acceptIdle, "fd shortage")
	w.limit(l, limitedAt(LimitGlobal, 0))
	if l.state != liLimited || l.limit != LimitSystem || w.nFull != 0 {
		t.Fatalf("global limit during an fd shortage pause: state %d, limit %v, nFull %d", l.state, l.limit, w.nFull)
	}
	w.resume(l)
	want(liLimited, acceptIdle, "fd shortage, resumed early")
	w.now += int64(systemPause)
	w.resume(l)
	want(liReady, acceptMulti, "pause over")

	// Near maxconn, accepts go one at a time.
	w.limit(l, limitedAt(LimitFrontend, 0))
	endAccept()
	w.p.cfg.Global.MaxConn = 16
	w.resume(l)
	want(liReady, acceptOne, "ready near maxconn")
	if eng.accepts != 3 || eng.acceptOnes != 1 {
		t.Fatalf("%d multishot and %d single-shot accepts armed, want 3 and 1", eng.accepts, eng.acceptOnes)
	}
	if w.cnt.Paused[LimitRate] != 1 || w.cnt.Paused[LimitGlobal] != 1 || w.cnt.Paused[LimitSystem] != 1 || w.cnt.Paused[LimitFrontend] != 1 {
		t.Errorf("pauses counted %v, want one of each but arena", w.cnt.Paused)
	}

	// Stop: the socket closes once the accept has ended.
	w.stopped = true
	w.stopAccept(l)
	w.rearm(l)
	want(liReady, acceptCancelling, "stopping, accept in flight")
	closes := eng.closes
	endAccept()
	want(liClosed, acceptIdle, "stopped")
	if eng.closes != closes+1 || !w.listenersClosed() {
		t.Errorf("stopped listener: %d closes, listenersClosed %v", eng.closes-closes, w.listenersClosed())
	}
}
