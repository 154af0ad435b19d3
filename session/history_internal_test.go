package session

import (
	"net/netip"
	"testing"
	"time"

	"ringproxy/ring"
)

// endSession closes s as its client's reset would and completes the
// receives it had in flight, so its slot is free again.
func endSession(w *worker, s *Session) {
	w.closeSession(s, ReasonClientError)
	w.complete(&ring.Completion{UD: s.tag(ring.OpRecv, clientSide), Res: -125})
	w.complete(&ring.Completion{UD: s.tag(ring.OpRecv, serverSide), Res: -125})
}

// startAnother admits one more client of w's listener, as admit would.
func startAnother(t *testing.T, w *worker, fd int) *Session {
	t.Helper()
	l := w.listeners[0]
	w.p.actconn.Add(1)
	l.fe.cur.Add(1)
	w.startSession(l, fd, netip.AddrPort{})
	for i := 0; i < w.slab.Cap(); i++ {
		if s := w.slab.At(uint32(i)); s.si[clientSide].fd == fd && s.state != stFree {
			return s
		}
	}
	t.Fatalf("no session for fd %d", fd)
	return nil
}

// The peaks follow the gauges: two sessions of a frontend, one on the
// server (maxconn 1) and one queued for it, make a frontend peak of 2, a
// server peak of 1, a queue peak of 1 and a backend peak of 2 (a session
// on one of its servers or queued for one); they stay when the sessions
// end, and the backend's load goes back to 0.
func TestPeaksFollowSlotsAndQueue(t *testing.T) {
	w, _, a := fakeWorker(t)
	a.srv.cfg.MaxConn = 1
	a.srv.maxconn.Store(1)
	b := startAnother(t, w, 1001)
	if b.state != stQueued {
		t.Fatalf("second session state %d, want queued", b.state)
	}
	h := &w.p.hist
	peaks := func() [4]int64 {
		return [4]int64{h.fePeak[0].Load(), h.srvPeak[0].Load(), h.queuePeak[0].Load(), h.bePeak[0].Load()}
	}
	if got, want := peaks(), [4]int64{2, 1, 1, 2}; got != want {
		t.Errorf("frontend, server, queue and backend peaks %v, want %v", got, want)
	}
	if n := h.load[0].Load(); n != 2 {
		t.Errorf("backend load %d with one session on its server and one queued, want 2", n)
	}
	endSession(w, a)
	w.Turn() // b takes the freed slot
	t.Cleanup(func() { ring.CloseNow(b.si[serverSide].fd) })
	if b.state != stConnecting {
		t.Fatalf("queued session state %d after the slot freed, want connecting", b.state)
	}
	if n := h.load[0].Load(); n != 1 {
		t.Errorf("backend load %d with one session on its server, want 1", n)
	}
	endSession(w, b)
	if n := h.load[0].Load(); n != 0 {
		t.Errorf("backend load %d with no session, want 0", n)
	}
	if got, want := peaks(), [4]int64{2, 1, 1, 2}; got != want {
		t.Errorf("peaks after the sessions ended %v, want %v", got, want)
	}
}

// A session's whole life (start, connect, forwarding, end) allocates
// nothing, the peaks' bookkeeping included.
func TestSessionLifeAllocatesNothing(t *testing.T) {
	w, eng, s := fakeWorker(t)
	endSession(w, s)
	life := func() {
		s := startAnother(t, w, 1002)
		fd := s.si[serverSide].fd
		w.complete(&ring.Completion{UD: s.tag(ring.OpConnect, serverSide), Res: 0})
		w.complete(recvDone(s, clientSide, 1, 100))
		w.complete(&ring.Completion{UD: eng.lastSend, Res: int32(eng.sendLen)})
		endSession(w, s)
		ring.CloseNow(fd) // the fake engine closes nothing
		eng.released = eng.released[:0]
	}
	life()
	if allocs := testing.AllocsPerRun(200, life); allocs != 0 {
		t.Fatalf("a session's life allocates %.2f times", allocs)
	}
	if w.p.hist.fePeak[0].Load() != 1 || w.p.hist.load[0].Load() != 0 {
		t.Errorf("frontend peak %d, backend load %d after one session at a time, want 1 and 0", w.p.hist.fePeak[0].Load(), w.p.hist.load[0].Load())
	}
}

// Rates are the counters' growth per second between two readings, the
// highest kept; a reading that went down (a worker that did not answer
// in time) is dropped, and the next one measured from the last good one.
func TestSampleRates(t *testing.T) {
	var h history
	h.ix = newRateIndex(1, 1, 1)
	h.counts, h.rates, h.lastSess = make([]uint64, h.ix.n), make([]Rate, h.ix.n), make([]time.Time, 1)
	t0 := time.Unix(1000, 0)
	h.sampled = t0
	reading := func(sessions uint64) []uint64 {
		r := make([]uint64, h.ix.n)
		r[rateSessions], r[h.ix.fe], r[h.ix.srv], r[h.ix.be] = sessions, sessions, sessions, sessions
		return r
	}
	for _, c := range []struct {
		at       time.Duration
		sessions uint64
		cur, max float64
		lastSess time.Duration
	}{
		{1 * time.Second, 5, 5, 5, 1 * time.Second},
		{2 * time.Second, 6, 1, 5, 2 * time.Second},
		{3 * time.Second, 6, 0, 5, 2 * time.Second},
		{4 * time.Second, 0, 0, 5, 2 * time.Second},    // dropped: below the last reading
		{5 * time.Second, 30, 12, 12, 5 * time.Second}, // 24 over the 2 s since the last good one
		{7500 * time.Millisecond, 31, 0.4, 12, 7500 * time.Millisecond},
	} {
		h.sample(t0.Add(c.at), reading(c.sessions))
		for _, i := range []int{rateSessions, h.ix.fe, h.ix.srv, h.ix.be} {
			if got := h.rates[i]; got != (Rate{c.cur, c.max}) {
				t.Errorf("at %v with %d sessions: rate %d is %+v, want %v / %v", c.at, c.sessions, i, got, c.cur, c.max)
			}
		}
		if got := h.lastSess[0]; !got.Equal(t0.Add(c.lastSess)) {
			t.Errorf("at %v: last session at %v, want %v", c.at, got.Sub(t0), c.lastSess)
		}
	}
}

// A server's state history: out while it takes no sessions, the time out
// summed, each change dated; its backend out while none of its servers
// takes sessions.
func TestStateHistory(t *testing.T) {
	be := &Backend{Name: "app", Balance: "roundrobin", TimeoutConnect: time.Second,
		Servers: []*Server{{Name: "a", Address: netip.MustParseAddrPort("127.0.0.1:9"), Weight: 1},
			{Name: "b", Address: netip.MustParseAddrPort("127.0.0.1:10"), Weight: 1}}}
	w, _ := workerOver(t, &Frontend{Name: "web", Backend: be}, be)
	p := w.p
	b := p.bes[0]
	t0 := time.Unix(1000, 0)
	p.hist.begin(p.bes, t0)
	at := func(s time.Duration) time.Time { return t0.Add(s * time.Second) }
	step := func(when time.Duration, change func()) {
		change()
		p.hist.observe(b, at(when))
	}
	a, bb := b.servers[0], b.servers[1]
	step(10, func() { a.up.Store(false) })
	step(20, func() { bb.admin.Store(uint32(AdminMaint)) }) // now none takes sessions
	step(25, func() { a.up.Store(true) })
	step(26, func() { a.up.Store(true) }) // no change
	v := p.historyView(at(30))
	check := func(what string, st stateHistory, out bool, changed time.Duration, down time.Duration, outs uint64) {
		t.Helper()
		if st.out != out || !st.changed.Equal(at(changed)) || st.downtime(at(30)) != down*time.Second || st.outs != outs {
			t.Errorf("%s: out %v since %v, down %v, %d times; want out %v since %v, down %v, %d times", what,
				st.out, st.changed.Sub(t0), st.downtime(at(30)), st.outs, out, changed*time.Second, down*time.Second, outs)
		}
	}
	check("server a", v.srvState[a.gidx], false, 25, 15, 1)
	check("server b", v.srvState[bb.gidx], true, 20, 10, 1)
	check("backend", v.beState[b.idx], false, 25, 5, 1)
}

// /stats.json writes a Seconds as seconds and reads it back.
func TestSecondsJSON(t *testing.T) {
	b, err := Seconds(1500 * time.Millisecond).MarshalJSON()
	if err != nil || string(b) != "1.5" {
		t.Fatalf("1.5 s marshals to %s, %v", b, err)
	}
	var s Seconds
	if err := s.UnmarshalJSON([]byte("3.25")); err != nil || time.Duration(s) != 3250*time.Millisecond {
		t.Errorf("3.25 reads back as %v, %v", time.Duration(s), err)
	}
}
