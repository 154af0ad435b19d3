package health

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTCPCheckDownAndUp(t *testing.T) {
	t.Parallel()
	srv := serve(t, hangUp)
	m, rec := start(t, tcpSpec, Target{Name: "app/app1", Addr: srv.addr})
	if !waitFor(2*time.Second, func() bool { return m.Snapshot()[0].Checks >= 3 }) {
		t.Fatal("no checks ran")
	}
	st := m.Snapshot()[0]
	if !st.Up || !st.LastOK || st.Successes < 3 || st.Failures != 0 || st.LastError != "" || st.Transitions != 0 {
		t.Errorf("listening: %+v, want UP with a success streak", st)
	}
	rec.none(t)

	srv.Close()
	ev, took := rec.next(t, 2*time.Second)
	if ev.Up || ev.Server != 0 || ev.Name != "app/app1" || ev.Passive ||
		ev.Message != "server app/app1 is DOWN: connect: connection refused, 2/2 failures" {
		t.Errorf("after close: %+v", ev)
	}
	// The next check within interval+10%, then one at the fast interval.
	if took > 500*time.Millisecond {
		t.Errorf("DOWN %v after the listener closed, want within ~0.3s", took)
	}

	ln, err := net.Listen("tcp", srv.addr.String())
	if err != nil {
		t.Fatalf("reopen %v: %v", srv.addr, err)
	}
	serveOn(t, ln, hangUp)
	ev, took = rec.next(t, 2*time.Second)
	if !ev.Up || ev.Message != "server app/app1 is UP: 2/2 successes" {
		t.Errorf("after reopen: %+v", ev)
	}
	if took > 800*time.Millisecond {
		t.Errorf("UP %v after reopening, want within ~0.5s", took)
	}
	st = m.Snapshot()[0]
	if !st.Up || st.Transitions != 2 || st.CheckFailures < 2 || st.Checks < st.CheckFailures+5 ||
		st.LastError != "check app/app1 "+srv.addr.String()+": connect: connection refused" ||
		st.LastErrorAt.Before(st.LastCheck.Add(-time.Second)) || st.LastCheck.IsZero() ||
		st.Name != "app/app1" || st.Addr != srv.addr {
		t.Errorf("after recovery: %+v", st)
	}
}

func TestHTTPCheckDownAndUp(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	var host atomic.Value
	status.Store(503)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(hs.Close)
	addr := netip.MustParseAddrPort(hs.Listener.Addr().String())
	spec := httpSpec
	spec.Host = "app.internal"
	m, rec := start(t, spec, Target{Name: "web/w1", Addr: addr})

	ev, _ := rec.next(t, 2*time.Second)
	if ev.Up || ev.Message != "server web/w1 is DOWN: http status 503, want 200, 2/2 failures" {
		t.Errorf("503: %+v", ev)
	}
	if got := m.Snapshot()[0].LastError; got != "check web/w1 "+addr.String()+": http status 503, want 200" {
		t.Errorf("LastError %q", got)
	}
	if got, _ := host.Load().(string); got != "app.internal" {
		t.Errorf("Host header %q, want app.internal", got)
	}
	status.Store(200)
	ev, _ = rec.next(t, 2*time.Second)
	if !ev.Up || ev.Message != "server web/w1 is UP: 2/2 successes" {
		t.Errorf("200: %+v", ev)
	}
}

func TestHTTPCheckGarbageGoesDown(t *testing.T) {
	t.Parallel()
	srv := serve(t, writeThenHold("220 smtp.example ESMTP\r\n"))
	_, rec := start(t, httpSpec, Target{Name: "web/w2", Addr: srv.addr})
	ev, _ := rec.next(t, 2*time.Second)
	if ev.Up || !strings.HasPrefix(ev.Message, `server web/w2 is DOWN: http: response is not HTTP: "220 smtp`) {
		t.Errorf("garbage: %+v", ev)
	}
}

func TestExpectCheck(t *testing.T) {
	t.Parallel()
	pong := serve(t, reply("+PONG\r\n"))
	errs := serve(t, reply("-ERR unknown command 'PING'\r\n"))
	m, rec := start(t, redisSpec,
		Target{Name: "redis/r1", Addr: pong.addr},
		Target{Name: "redis/r2", Addr: errs.addr})
	ev, _ := rec.next(t, 3*time.Second)
	if ev.Up || ev.Server != 1 || !strings.HasPrefix(ev.Message, "server redis/r2 is DOWN: read: timeout after 300ms") {
		t.Errorf("-ERR responder: %+v", ev)
	}
	snap := m.Snapshot()
	if !snap[0].Up || snap[0].Checks < 2 || snap[0].CheckFailures != 0 {
		t.Errorf("PONG responder: %+v", snap[0])
	}
	rec.none(t)
}

// A server that accepts and never answers: every check fails after the
// timeout, not later, and the server goes DOWN.
func TestSilentServerGoesDown(t *testing.T) {
	t.Parallel()
	srv := serve(t, silent)
	for _, spec := range []Spec{httpSpec, redisSpec} {
		t.Run(string(spec.Kind), func(t *testing.T) {
			t.Parallel()
			m, rec := start(t, spec, Target{Name: "s/1", Addr: srv.addr})
			ev, _ := rec.next(t, 3*time.Second)
			if ev.Up || !strings.Contains(ev.Message, "timeout after 300ms") {
				t.Errorf("%+v", ev)
			}
			st := m.Snapshot()[0]
			if st.LastDuration < spec.Timeout-10*time.Millisecond || st.LastDuration > spec.Timeout+200*time.Millisecond {
				t.Errorf("check took %v, want ~%v", st.LastDuration, spec.Timeout)
			}
		})
	}
}

func TestBlackholeGoesDown(t *testing.T) {
	t.Parallel()
	addr := blackhole(t)
	m, rec := start(t, tcpSpec, Target{Name: "bh/1", Addr: addr})
	ev, _ := rec.next(t, 3*time.Second)
	if ev.Up || ev.Message != "server bh/1 is DOWN: connect: timeout after 300ms, 2/2 failures" {
		t.Errorf("%+v", ev)
	}
	if d := m.Snapshot()[0].LastDuration; d < 290*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("check took %v, want ~300ms", d)
	}
}

func TestObservePassiveDown(t *testing.T) {
	t.Parallel()
	srv := serve(t, hangUp)
	spec := tcpSpec
	spec.Interval, spec.Fall = time.Hour, 3
	m, rec := start(t, spec, Target{Name: "app/app1", Addr: srv.addr}, Target{Name: "app/app2", Addr: srv.addr})
	settle := func() { time.Sleep(30 * time.Millisecond) } // let the checker read its nudges

	m.Observe(0, false, "connect refused")
	m.Observe(0, false, "connect refused")
	settle()
	if st := m.Snapshot()[0]; !st.Up || st.PassiveFailures != 2 || st.ObservedFailures != 2 {
		t.Errorf("after 2 of 3 failures: %+v", st)
	}
	m.Observe(0, true, "")
	m.Observe(0, false, "connect refused")
	m.Observe(0, false, "connect refused")
	settle()
	rec.none(t)
	if st := m.Snapshot()[0]; !st.Up || st.PassiveFailures != 2 || st.ObservedFailures != 4 {
		t.Errorf("success then 2 failures: %+v", st)
	}

	m.Observe(0, false, "connect refused")
	ev, took := rec.next(t, time.Second)
	if ev.Up || !ev.Passive || ev.Server != 0 ||
		ev.Message != "server app/app1 is DOWN: connect refused, 3/3 failures on live traffic" {
		t.Errorf("third failure: %+v", ev)
	}
	if took > 500*time.Millisecond {
		t.Errorf("DOWN %v after the third failure, want at once", took)
	}
	st := m.Snapshot()
	if st[0].Up || st[0].Transitions != 1 || !strings.Contains(st[0].LastError, "connect refused, 3 consecutive") {
		t.Errorf("after passive DOWN: %+v", st[0])
	}
	if !st[1].Up || st[1].ObservedFailures != 0 {
		t.Errorf("the other server: %+v", st[1])
	}

	// Live traffic never brings a server back: only active checks (an hour away).
	for range 10 {
		m.Observe(0, true, "")
	}
	settle()
	rec.none(t)
	if m.Snapshot()[0].Up {
		t.Error("UP after passive successes")
	}
}

// Passive failures shorten the wait for the next active check to the fast
// interval, so a server failing live traffic is confirmed quickly.
func TestObserveSpeedsUpChecks(t *testing.T) {
	t.Parallel()
	srv := serve(t, hangUp)
	spec := tcpSpec
	spec.Interval, spec.Fall = 2*time.Second, 5 // fast interval 500ms
	m, _ := start(t, spec, Target{Name: "a/1", Addr: srv.addr})
	if !waitFor(2*time.Second, func() bool { return m.Snapshot()[0].Checks == 1 }) {
		t.Fatal("no first check")
	}
	m.Observe(0, false, "connect refused")
	t0 := time.Now()
	if !waitFor(time.Second, func() bool { return m.Snapshot()[0].Checks == 2 }) {
		t.Fatalf("no check within 1s of a passive failure (interval 2s, fast 500ms)")
	}
	if took := time.Since(t0); took < 400*time.Millisecond {
		t.Errorf("next check %v after a passive failure, want ~500ms", took)
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	srv := serve(t, hangUp)
	spec := tcpSpec
	spec.Interval, spec.Fall = time.Hour, 1<<30
	m, _ := start(t, spec, Target{Name: "a/1", Addr: srv.addr})
	reason := "connect refused"
	for name, f := range map[string]func(){
		"success":       func() { m.Observe(0, true, "") },
		"failure":       func() { m.Observe(0, false, reason) },
		"streak broken": func() { m.Observe(0, false, reason); m.Observe(0, true, "") },
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("Observe %s: %v allocations, want 0", name, n)
		}
	}
	var nilm *Monitor
	nilm.Observe(3, false, reason) // no checks configured: a no-op
}

// Observe must return at once however fast it is called, whether or not
// the checker keeps up, and after Stop when nobody reads its nudges.
func TestObserveNeverBlocks(t *testing.T) {
	t.Parallel()
	srv := serve(t, hangUp)
	spec := tcpSpec
	spec.Interval = time.Hour
	m, _ := start(t, spec, Target{Name: "a/1", Addr: srv.addr}, Target{Name: "a/2", Addr: srv.addr})
	hammer := func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 100_000 {
				m.Observe(i&1, i%3 == 0, "connect refused")
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("100k Observe calls did not finish in 5s")
		}
	}
	for range 4 { // concurrently, as from several workers
		go hammer()
	}
	hammer()
	m.Stop()
	hammer()
}

// Checks of many servers with the same interval must not fire together.
func TestFirstChecksAreSpread(t *testing.T) {
	t.Parallel()
	const n = 20
	var firsts [n]atomic.Int64
	targets := make([]Target, n)
	for i := range n {
		srv := serve(t, func(c net.Conn) {
			firsts[i].CompareAndSwap(0, time.Now().UnixNano())
			c.Close()
		})
		targets[i] = Target{Name: "a/" + string(rune('a'+i)), Addr: srv.addr}
	}
	spec := tcpSpec
	spec.Interval = 200 * time.Millisecond
	start(t, spec, targets...)
	if !waitFor(2*time.Second, func() bool {
		for i := range n {
			if firsts[i].Load() == 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("not every server was checked")
	}
	lo, hi := firsts[0].Load(), firsts[0].Load()
	for i := range n {
		lo, hi = min(lo, firsts[i].Load()), max(hi, firsts[i].Load())
	}
	if spread := time.Duration(hi - lo); spread < spec.Interval/4 {
		t.Errorf("first checks of %d servers spread over %v, want most of the %v interval", n, spread, spec.Interval)
	}
}

func TestStartRejectsBadTargets(t *testing.T) {
	for _, tg := range []Target{{Name: "a/1"}, {Name: "a/2", Addr: netip.MustParseAddrPort("127.0.0.1:0")}} {
		if _, err := Start(tcpSpec, []Target{tg}, nil); err == nil || !strings.Contains(err.Error(), "no address to check") {
			t.Errorf("%+v: %v", tg, err)
		}
	}
	m, err := Start(tcpSpec, nil, nil)
	if err != nil || len(m.Snapshot()) != 0 {
		t.Errorf("no targets: %v", err)
	}
	m.Stop()
}

// Stop cuts checks in flight against black-holed and silent servers
// short, returns promptly, and leaves no goroutine behind. Not parallel:
// it counts goroutines.
func TestStopIsPromptAndLeakFree(t *testing.T) {
	bh := blackhole(t)
	quiet := serve(t, silent)
	before := runtime.NumGoroutine()
	var monitors []*Monitor
	for _, spec := range []Spec{tcpSpec, httpSpec, redisSpec} {
		spec.Timeout, spec.Interval = time.Hour, 50*time.Millisecond
		m, err := Start(spec, []Target{{Name: "bh/1", Addr: bh}, {Name: "bh/2", Addr: bh}, {Name: "q/1", Addr: quiet.addr}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		monitors = append(monitors, m)
	}
	time.Sleep(150 * time.Millisecond) // every first check is in flight
	t0 := time.Now()
	for _, m := range monitors {
		m.Stop()
		m.Stop() // idempotent
	}
	if took := time.Since(t0); took > time.Second {
		t.Errorf("Stop took %v with checks in flight", took)
	}
	for _, m := range monitors {
		for _, st := range m.Snapshot() {
			if st.CheckFailures != 0 { // with an hour's timeout, only Stop ends a check early
				t.Errorf("a check cut short by Stop was recorded: %+v", st)
			}
		}
	}
	if !waitFor(2*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before Start, %d after Stop\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}

// A target that starts Down (a reload carrying over a DOWN server) stays
// out until rise successes, then reports UP like any recovery.
func TestTargetStartsDown(t *testing.T) {
	t.Parallel()
	srv := serve(t, hangUp)
	m, rec := start(t, tcpSpec, Target{Name: "app/app1", Addr: srv.addr, Down: true})
	if st := m.Snapshot()[0]; st.Up {
		t.Fatalf("at start: %+v, want DOWN", st)
	}
	ev, _ := rec.next(t, 3*time.Second)
	if !ev.Up || ev.Message != "server app/app1 is UP: 2/2 successes" {
		t.Errorf("first event: %+v, want UP after rise successes", ev)
	}
	if st := m.Snapshot()[0]; !st.Up || st.Transitions != 1 {
		t.Errorf("after rise: %+v", st)
	}
}

// Maintenance, as HAProxy's: no checks while paused, the server DOWN;
// on resume UP at once, one failed check from DOWN, checked at once.
func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	srv := serve(t, hangUp)
	m, rec := start(t, tcpSpec, Target{Name: "app/app1", Addr: srv.addr})
	if !waitFor(2*time.Second, func() bool { return m.Snapshot()[0].Checks >= 2 }) {
		t.Fatal("no checks ran")
	}
	m.Pause(0)
	st := m.Snapshot()[0]
	if !st.Paused || st.Up || st.Successes != 0 || st.Failures != 0 {
		t.Fatalf("paused: %+v, want Paused and DOWN with no streak", st)
	}
	checks := st.Checks
	time.Sleep(5 * tcpSpec.Interval)
	if st = m.Snapshot()[0]; st.Checks > checks+1 { // one may have been in flight
		t.Errorf("%d checks ran while paused", st.Checks-checks)
	}
	m.Pause(0) // again: nothing changes
	rec.none(t)

	srv.Close() // a check now would fail: it must wait for Resume
	time.Sleep(3 * tcpSpec.Interval)
	rec.none(t)
	checks = m.Snapshot()[0].Checks
	m.Resume(0)
	// The check Resume starts may already have failed (a refused connect
	// takes microseconds): then the server is DOWN already.
	st = m.Snapshot()[0]
	if ranAlready := st.Checks > checks; st.Paused || !ranAlready && (!st.Up || st.Failures != tcpSpec.Fall-1) ||
		ranAlready && (st.Up || st.Failures != tcpSpec.Fall) {
		t.Fatalf("resumed: %+v, want UP, %d failure(s) counted, until the first check fails", st, tcpSpec.Fall-1)
	}
	ev, took := rec.next(t, 2*time.Second)
	if ev.Up || took > tcpSpec.Interval {
		t.Errorf("after resume with the server gone: %+v after %v, want DOWN within one check", ev, took)
	}
}

// Paused in the target: a reload carries maintenance over.
func TestTargetStartsPaused(t *testing.T) {
	t.Parallel()
	srv := serve(t, hangUp)
	m, rec := start(t, tcpSpec, Target{Name: "app/app1", Addr: srv.addr, Paused: true})
	time.Sleep(3 * tcpSpec.Interval)
	if st := m.Snapshot()[0]; !st.Paused || st.Up || st.Checks != 0 {
		t.Fatalf("started paused: %+v, want no checks, DOWN", st)
	}
	rec.none(t)
	m.Resume(0)
	if !waitFor(time.Second, func() bool { return m.Snapshot()[0].Checks >= 1 }) {
		t.Fatal("no check after Resume")
	}
	if st := m.Snapshot()[0]; !st.Up || st.Failures != 0 {
		t.Errorf("resumed on a live server: %+v, want UP with the streak cleared", st)
	}
	rec.none(t)
}

// A server added at runtime is checked at once, under the next index, and
// reported as the others are; a removed one is checked no more.
func TestAddAndRemove(t *testing.T) {
	t.Parallel()
	first := serve(t, hangUp)
	m, rec := start(t, tcpSpec, Target{Name: "app/app1", Addr: first.addr})
	added := serve(t, hangUp)
	i, err := m.Add(Target{Name: "app/app2", Addr: added.addr})
	if err != nil || i != 1 {
		t.Fatalf("Add: %d, %v; want index 1", i, err)
	}
	if !waitFor(2*time.Second, func() bool { s := m.Snapshot(); return len(s) == 2 && s[1].Checks >= 2 }) {
		t.Fatalf("the added server is not checked: %+v", m.Snapshot())
	}
	added.Close()
	ev, _ := rec.next(t, 2*time.Second)
	if ev.Up || ev.Server != 1 || ev.Name != "app/app2" {
		t.Fatalf("after the added server closed: %+v, want server 1 DOWN", ev)
	}
	m.Remove(1)
	checks := m.Snapshot()[1].Checks
	time.Sleep(3 * tcpSpec.Interval)
	if n := m.Snapshot()[1].Checks; n != checks {
		t.Errorf("removed server checked %d more times", n-checks)
	}
	if !m.Snapshot()[0].Up {
		t.Error("removing one server stopped the others' checks")
	}
	if _, err := m.Add(Target{Name: "app/bad"}); err == nil {
		t.Error("Add took a target with no address")
	}
}
