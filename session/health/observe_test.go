package health

import (
	"strings"
	"testing"
	"time"
)

// Without a regular check, error_limit consecutive failures take a
// server DOWN for the downtime and it comes back by itself; a success in
// between starts the count over. A server a reload knew DOWN serves a
// downtime again.
func TestObserveDowntime(t *testing.T) {
	const downtime = 300 * time.Millisecond
	spec := Spec{Kind: NoCheck, Observe: &ObserveSpec{ErrorLimit: 3, OnError: MarkDown, Downtime: downtime}}
	srv := serve(t, hangUp)
	m, rec := start(t, spec, Target{Name: "b/s", Addr: srv.addr}, Target{Name: "b/t", Addr: srv.addr, Down: true})

	ev, _ := rec.next(t, 2*downtime) // t's reload downtime ends
	if !ev.Up || ev.Server != 1 {
		t.Fatalf("event %+v, want b/t UP after its downtime", ev)
	}
	m.Observe(0, false, "connect refused")
	m.Observe(0, false, "connect refused")
	m.Observe(0, true, "")
	m.Observe(0, false, "connect refused")
	time.Sleep(50 * time.Millisecond)
	rec.none(t)
	m.Observe(0, false, "connect refused")
	m.Observe(0, false, "connect refused")
	ev, _ = rec.next(t, time.Second)
	if ev.Up || !ev.Passive || !strings.Contains(ev.Message, "3 consecutive connect failures on live traffic, last one was: connect refused, back in 300ms") {
		t.Fatalf("event %+v", ev)
	}
	if st := m.Snapshot()[0]; !st.ObserveDown || st.HanaFailures != 1 || st.Up {
		t.Errorf("state %+v", st)
	}
	ev, took := rec.next(t, 2*downtime)
	if !ev.Up || took < downtime-50*time.Millisecond {
		t.Errorf("event %+v after %v, want UP after %v", ev, took, downtime)
	}
}

// On_error's modes act on the regular check's counters as HAProxy's
// health_adjust does on its health: with fall 3, sudden-death leaves the
// server one failure from DOWN, mark-down takes it DOWN, fail-check
// counts one failure.
func TestObserveModes(t *testing.T) {
	for mode, fails := range map[OnError]int{FailCheck: 1, SuddenDeath: 2, MarkDown: 3, FastInter: 0} {
		c := &checker{t: newTracker(2, 3, true), agentUp: true, up: true}
		m := &Monitor{spec: Spec{Kind: TCP, Interval: time.Hour, Rise: 2, Fall: 3, Observe: &ObserveSpec{ErrorLimit: 1, OnError: mode}}}
		s := &server{target: Target{Name: "b/s"}}
		c.timer = time.NewTimer(time.Hour)
		s.obs.streak.Store(1)
		m.observeLayer4(s, c, "connect refused")
		if c.t.fail != fails || c.t.up != (fails < 3) {
			t.Errorf("%s: %d failures, up %v; want %d", mode, c.t.fail, c.t.up, fails)
		}
		if st := s.state; st.HanaFailures != 1 || st.Hana != (mode != FastInter) {
			t.Errorf("%s: state %+v", mode, st)
		}
		c.timer.Stop()
	}
}
