package health

// tracker is one server's rise/fall state machine. It is pure (no clock,
// no I/O) so its rules are table-tested; the server's checker goroutine
// owns it and feeds it results.
type tracker struct {
	rise, fall int
	up         bool
	succ, fail int // consecutive active results; at most one is non-zero
	passive    int // consecutive live-traffic connect failures, as last seen
}

// newTracker starts in state up: UP after a restart, which must not drop
// traffic while checks warm up; DOWN when a reload knew it down.
func newTracker(rise, fall int, up bool) tracker {
	return tracker{rise: rise, fall: fall, up: up}
}

// record applies one active check result and reports whether the server
// changed state. Counters keep counting past rise/fall so a snapshot shows
// the real streak; a transition happens when one reaches its threshold.
func (t *tracker) record(ok bool) (changed bool) {
	if ok {
		t.succ++
		t.fail = 0
		if !t.up && t.succ >= t.rise {
			t.up = true
			t.passive = 0 // failures seen while DOWN must not count toward the next DOWN
			return true
		}
		return false
	}
	t.fail++
	t.succ = 0
	if t.up && t.fail >= t.fall {
		t.up = false
		t.passive = 0
		return true
	}
	return false
}

// setPassive sets the streak of consecutive connect failures on live
// traffic (the data path counts it; 0 after a successful connect) and
// reports whether that took the server DOWN. Passive results never bring
// a server UP, and are ignored while it is DOWN.
func (t *tracker) setPassive(n int) (changed bool) {
	if !t.up {
		t.passive = 0
		return false
	}
	t.passive = n
	if n >= t.fall {
		t.up = false
		t.passive = 0
		t.succ = 0 // rise full checks are needed from here
		return true
	}
	return false
}

// observe applies one passive result, as setPassive over a local streak.
func (t *tracker) observe(ok bool) (changed bool) {
	if ok {
		return t.setPassive(0)
	}
	return t.setPassive(t.passive + 1)
}

// transitioning reports whether the server is on its way to the other
// state, so checks should run at the fast interval.
func (t *tracker) transitioning() bool {
	if t.up {
		return t.fail > 0 || t.passive > 0
	}
	return t.succ > 0
}
