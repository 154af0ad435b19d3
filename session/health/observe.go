package health

import (
	"fmt"
	"time"
)

// observeLayer4 is HAProxy's observe layer4 (check.c __health_adjust):
// once ErrorLimit consecutive connects on live traffic failed, the streak
// starts over and on_error acts. With a regular check, fail-check counts
// one failed check, sudden-death leaves the server one failed check from
// DOWN, mark-down takes it DOWN, and every mode checks again soon
// (fastinter). Without one, the server is DOWN for Downtime, nginx's
// max_fails and fail_timeout.
func (m *Monitor) observeLayer4(s *server, c *checker, reason string) {
	o := m.spec.Observe
	n := s.obs.streak.Load()
	if n < int64(o.ErrorLimit) || !c.up {
		return // below the limit; or out already, and a late report says nothing
	}
	s.obs.streak.Store(0)
	why := fmt.Sprintf("Detected %d consecutive errors, last one was: %s", n, reason)
	s.mu.Lock()
	st := &s.state
	st.HanaFailures++
	st.LastError = fmt.Sprintf("live traffic to %s %v: %s", s.target.Name, s.target.Addr, why)
	st.LastErrorAt = time.Now()
	s.mu.Unlock()
	if !m.spec.hasCheck() {
		m.observeDown(s, c, n, reason)
		return
	}
	m.checkSoon(c)
	t := &c.t
	switch o.OnError {
	case FastInter:
		return
	case SuddenDeath:
		if t.up {
			t.fail = max(t.fail, t.fall-2)
		}
	case MarkDown:
		if t.up {
			t.fail = t.fall - 1
		}
	}
	// A failed check of status HANA, as HAProxy simulates one.
	t.record(false)
	s.mu.Lock()
	st.Checks++
	st.CheckFailures++
	st.Hana, st.LastOK = true, false
	st.LastCheck, st.LastDuration = st.LastErrorAt, 0
	s.mu.Unlock()
	if !t.up {
		s.obs.streak.Store(0)
	}
	m.settle(s, c, Event{Passive: true, Message: fmt.Sprintf("%s, on_error %s, %d/%d failures", why, o.OnError, t.fail, t.fall)})
}

// observeDown takes a server without a regular check DOWN for observe's
// downtime.
func (m *Monitor) observeDown(s *server, c *checker, n int64, reason string) {
	d := m.spec.Observe.Downtime
	c.obsDown = true
	c.obsTimer.Reset(d)
	s.mu.Lock()
	s.state.ObserveUntil = time.Now().Add(d)
	s.mu.Unlock()
	msg := fmt.Sprintf("%s, back in %v (observe_downtime)", reason, d)
	if n > 0 {
		msg = fmt.Sprintf("%d consecutive connect failures on live traffic, last one was: %s, back in %v (observe_downtime)", n, reason, d)
	}
	m.settle(s, c, Event{Passive: true, Message: msg})
}

// observeBack ends observe's downtime: the server takes sessions again,
// nginx's fail_timeout passing.
func (m *Monitor) observeBack(s *server, c *checker) {
	if !c.obsDown {
		return
	}
	c.obsDown = false
	s.obs.streak.Store(0)
	m.settle(s, c, Event{Passive: true, Message: fmt.Sprintf("observe_downtime %v passed", m.spec.Observe.Downtime)})
}
