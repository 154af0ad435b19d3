package session_test

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// The ramp's shape as the tests model it: what slowstart.go does, from
// the outside. A ramp over window steps every window/20 (at least 250ms);
// in between, the effective weight is the one of the last step.
const rampWindow = 2 * time.Second

func rampStepOf(window time.Duration) time.Duration { return max(window/20, 250*time.Millisecond) }

// warmShare is the share of new sessions a warming server of weight w
// should get at t into its ramp beside one steady server of weight w: its
// effective weight, 1/16 of w at the start and all of it at the end, over
// the sum.
func warmShare(t, window time.Duration) float64 {
	step := rampStepOf(window)
	e := min(t/step*step, window)
	f := (1 + 15*float64(e)/float64(window)) / 16
	return f / (f + 1)
}

// sample is one session: when it was opened, into the ramp, and where
// it went.
type sample struct {
	at     time.Duration
	server string
}

// drive opens sessions back to back for d, each held until 32 newer ones
// are open (so the load-aware algorithms see loads that follow their
// picks), from a new source address each when distinct (consistent
// hashes clients), and says where each went.
func drive(t *testing.T, addr netip.AddrPort, t0 time.Time, d time.Duration, distinct bool) []sample {
	const held = 32
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	var out []sample
	defer func() {
		var gap time.Duration
		at := time.Duration(0)
		for i := 1; i < len(out); i++ {
			if g := out[i].at - out[i-1].at; g > gap {
				gap, at = g, out[i].at
			}
		}
		t.Logf("longest gap between sessions %v at %v", gap, at)
	}()
	for k := 0; time.Since(t0) < d; k++ {
		src := netip.Addr{}
		if distinct {
			src = clientAddr(k % 60000)
		}
		at := time.Since(t0)
		name, c := who(t, src, addr)
		out = append(out, sample{at, name})
		open = append(open, c)
		if len(open) > held {
			open[0].Close()
			open = open[1:]
		}
	}
	return out
}

// TestSlowStartRamp: a server leaving maint with a slow start gets
// little at first and about its share at the end, following the ramp,
// against a steady server of the same weight; for every algorithm that
// weighs servers on the fly.
func TestSlowStartRamp(t *testing.T) {
	for _, algo := range []string{"roundrobin", "leastconn", "random", "consistent"} {
		t.Run(algo, func(t *testing.T) {
			forEngines(t, func(t *testing.T, eng string) {
				cfg, _ := named(t, eng, algo, "steady", "warm")
				cfg.Backends[0].Servers[1].SlowStart = rampWindow
				p, addr := startProxy(t, cfg)
				if err := p.SetServerState("app", "warm", session.AdminMaint); err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				if err := p.SetServerState("app", "warm", session.AdminReady); err != nil {
					t.Fatal(err)
				}
				// Two buckets past the window, so the last is whole.
				samples := drive(t, addr, t0, rampWindow+2*rampBucket, algo == "consistent")
				checkRamp(t, samples, rampWindow)
				if ss := serverStats(t, p, "warm"); ss.SlowStart != nil || ss.Weight != 100 {
					t.Errorf("after the window: weight %d, slow start %+v; want 100, none", ss.Weight, ss.SlowStart)
				}
			})
		})
	}
}

// rampBucket is the span checkRamp tallies shares over.
const rampBucket = 500 * time.Millisecond

// shareTolerance is how far a share of n sessions may stray from want:
// 0.1, or 3.5 binomial standard deviations when n is too small for 0.1
// to hold by chance alone (a slow machine opens 110 sessions, not 1000,
// in a bucket; a consistent hash over so few clients strays 0.13).
func shareTolerance(want float64, n int) float64 {
	return max(0.1, 3.5*math.Sqrt(want*(1-want)/float64(n)))
}

// checkRamp compares the warming server's share of each half second's
// sessions with the ramp's: within shareTolerance, below 0.25 in the
// first, about half after the window.
func checkRamp(t *testing.T, samples []sample, window time.Duration) {
	t.Helper()
	const bucket = rampBucket
	type tally struct {
		n, warm int
		want    float64
	}
	buckets := make([]tally, int((window+bucket)/bucket)+1)
	for _, s := range samples {
		b := &buckets[min(int(s.at/bucket), len(buckets)-1)]
		b.n++
		b.want += warmShare(s.at, window)
		if s.server == "warm" {
			b.warm++
		}
	}
	var shape string
	measured := 0
	for i, b := range buckets {
		if b.n == 0 {
			continue
		}
		share, want := float64(b.warm)/float64(b.n), b.want/float64(b.n)
		shape += fmt.Sprintf(" %.0fms:%.2f/%.2f(n=%d)", float64(time.Duration(i)*bucket/time.Millisecond), share, want, b.n)
		if b.n < 40 {
			continue // the machine stalled the client: too few to measure
		}
		measured++
		tol := shareTolerance(want, b.n)
		if d := share - want; d > tol || d < -tol {
			t.Errorf("bucket %d (from %v): warming server got %.2f of %d sessions, want %.2f ± %.2f", i, time.Duration(i)*bucket, share, b.n, want, tol)
		}
		if i == 0 && share > 0.25 {
			t.Errorf("first %v: warming server got %.2f of the sessions, want a small share", bucket, share)
		}
		if d := share - 0.5; time.Duration(i)*bucket >= window && (d > tol || d < -tol) {
			t.Errorf("after the window: warming server got %.2f of %d sessions, want 0.50 ± %.2f", share, b.n, tol)
		}
	}
	t.Logf("share of the warming server got/wanted per %v:%s", bucket, shape)
	if measured < len(buckets)/2 {
		t.Errorf("only %d of %d buckets had sessions enough to measure", measured, len(buckets))
	}
}

// TestSlowStartMaxConn: a warming server's maxconn ramps too, from 1 to
// its own over the window, for first (which ignores weights) as for a
// weighted algorithm: sessions beyond it go to the next server.
func TestSlowStartMaxConn(t *testing.T) {
	for _, algo := range []string{"first", "roundrobin"} {
		t.Run(algo, func(t *testing.T) {
			forEngines(t, func(t *testing.T, eng string) {
				const maxconn = 20
				cfg, _ := named(t, eng, algo, "warm", "spill")
				warm := cfg.Backends[0].Servers[0]
				warm.MaxConn, warm.SlowStart = maxconn, rampWindow
				p, addr := startProxy(t, cfg)
				if err := p.SetServerState("app", "warm", session.AdminMaint); err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				if err := p.SetServerState("app", "warm", session.AdminReady); err != nil {
					t.Fatal(err)
				}
				var open []net.Conn
				defer func() {
					for _, c := range open {
						c.Close()
					}
				}()
				onWarm, peak := 0, 0.0
				for time.Since(t0) < rampWindow+300*time.Millisecond {
					name, c := who(t, netip.Addr{}, addr)
					at := time.Since(t0) // assigned by now: the limit then bounds it
					open = append(open, c)
					if name == "warm" {
						onWarm++
					}
					// Steps lag the ramp: never more than its maxconn now.
					limit := max(1, int(maxconn*min(at, rampWindow)/rampWindow))
					if onWarm > limit {
						t.Fatalf("%v into the ramp: %d sessions on the warming server, its maxconn is %d by then", at, onWarm, limit)
					}
					if at < rampWindow/2 {
						peak = float64(onWarm)
					}
					time.Sleep(5 * time.Millisecond)
				}
				if peak > maxconn/2 || peak < 2 {
					t.Errorf("half way through the ramp the warming server held %.0f sessions, want 2..%d", peak, maxconn/2)
				}
				if onWarm != maxconn {
					t.Errorf("after the ramp the warming server holds %d sessions, want its maxconn %d", onWarm, maxconn)
				}
			})
		})
	}
}

// TestSlowStartNotAtStartOrReload: servers UP at start, and at a reload,
// take their full share at once: slowstart only throttles a server that
// comes back. A ramp under way at the reload goes on where it was.
func TestSlowStartNotAtStartOrReload(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg, _ := named(t, eng, "roundrobin", "a", "b")
		cfg.Frontends[0].Binds = testbed.FreeAddrs(t, 1) // a reload takes it over
		for _, s := range cfg.Backends[0].Servers {
			s.SlowStart = 10 * time.Second
		}
		p, addr := startProxy(t, cfg)
		evenSplit := func(p *session.Proxy, when string) {
			t.Helper()
			got := map[string]int{}
			for range 20 {
				got[whoOnce(t, netip.Addr{}, addr)]++
			}
			// ± 2: right after a reload the old generation may still take
			// a client or two; a warming server would get 1 or 2 in all.
			if got["a"] < 8 || got["b"] < 8 {
				t.Errorf("%s: sessions went %v, want about 10 each: no server warms up", when, got)
			}
			for _, s := range p.Snapshot().Backends[0].Servers {
				if s.SlowStart != nil || s.Weight != 100 {
					t.Errorf("%s: server %s weight %d, slow start %+v; want 100, none", when, s.Name, s.Weight, s.SlowStart)
				}
			}
		}
		evenSplit(p, "at start")
		next := reloadTo(t, p, cfg)
		evenSplit(next, "after a reload")

		if err := next.SetServerState("app", "b", session.AdminMaint); err != nil {
			t.Fatal(err)
		}
		if err := next.SetServerState("app", "b", session.AdminReady); err != nil {
			t.Fatal(err)
		}
		before := serverStats(t, next, "b").SlowStart
		if before == nil {
			t.Fatal("b left maint with no slow start")
		}
		third := reloadTo(t, next, cfg)
		after := serverStats(t, third, "b").SlowStart
		if after == nil || !after.Since.Equal(before.Since) {
			t.Fatalf("a ramp under way across a reload: %+v before, %+v after; want it to go on", before, after)
		}
		if a := serverStats(t, third, "a"); a.SlowStart != nil {
			t.Errorf("a, serving at full weight, warms up after the reload: %+v", a.SlowStart)
		}
	})
}

// TestSlowStartRestartedByDown: a check passing after DOWN starts a
// ramp; DOWN mid-ramp ends it, and the next UP starts again from the
// bottom. set weight during a ramp sets where it goes; the ramp goes on.
func TestSlowStartRestartedByDown(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		steady, warm := startRestartable(t, "steady"), startRestartable(t, "warm")
		cfg := testConfig(eng, steady.addr, warm.addr)
		cfg.Backends[0].Check = &session.Check{Kind: "tcp", Interval: 25 * time.Millisecond, Timeout: 20 * time.Millisecond, Rise: 1, Fall: 1}
		cfg.Backends[0].Servers[1].SlowStart = 5 * time.Second
		p, _ := startProxy(t, cfg)
		const name = "s2"
		bounce := func() *session.SlowStart {
			t.Helper()
			warm.stop()
			testbed.WaitFor(t, 2*time.Second, func() bool { return !serverStats(t, p, name).Up }, "s2 DOWN")
			if ss := serverStats(t, p, name); ss.SlowStart != nil {
				t.Fatalf("DOWN, and still warming up: %+v", ss.SlowStart)
			}
			warm.start(t)
			testbed.WaitFor(t, 2*time.Second, func() bool { return serverStats(t, p, name).Up }, "s2 UP")
			ss := serverStats(t, p, name)
			if ss.SlowStart == nil {
				t.Fatal("UP after DOWN with no slow start")
			}
			if ss.SlowStart.Throttle > 20 || ss.Weight > 20 {
				t.Errorf("just UP: throttle %d%%, weight %d; want the bottom of the ramp", ss.SlowStart.Throttle, ss.Weight)
			}
			return ss.SlowStart
		}
		first := bounce()
		testbed.WaitFor(t, 3*time.Second, func() bool {
			ss := serverStats(t, p, name).SlowStart
			return ss != nil && ss.Throttle >= 30
		}, "the ramp to climb past 30%")

		if err := p.SetServerWeight("app", name, 50); err != nil {
			t.Fatal(err)
		}
		ss := serverStats(t, p, name)
		if ss.SlowStart == nil || ss.SlowStart.Weight != 50 || ss.UserWeight != 50 || ss.Weight >= 50 || ss.SlowStart.Throttle < 30 {
			t.Errorf("set weight 50 mid-ramp: weight %d, user weight %d, slow start %+v; want the ramp going on to 50", ss.Weight, ss.UserWeight, ss.SlowStart)
		}
		if cur, _, _ := p.ServerWeight("app", name); cur != 50 {
			t.Errorf("get weight mid-ramp says %d, want 50: the weight set (HAProxy's uweight)", cur)
		}

		second := bounce()
		if !second.Since.After(first.Since) {
			t.Errorf("second ramp since %v, first since %v: want it started over", second.Since, first.Since)
		}
	})
}

// TestSlowStartServesTheQueue: sessions queued for a warming server's
// slots start as its maxconn steps up, not only when one of its
// sessions ends (none does here).
func TestSlowStartServesTheQueue(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		const maxconn = 10
		cfg, _ := named(t, eng, "roundrobin", "warm")
		be := cfg.Backends[0]
		be.TimeoutQueue = 10 * time.Second
		be.Servers[0].MaxConn, be.Servers[0].SlowStart = maxconn, rampWindow
		p, addr := startProxy(t, cfg)
		if err := p.SetServerState("app", "warm", session.AdminMaint); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := p.SetServerState("app", "warm", session.AdminReady); err != nil {
			t.Fatal(err)
		}
		type served struct {
			at  time.Duration
			err error
		}
		done := make(chan served, maxconn)
		for range maxconn {
			go func() {
				c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
				if err != nil {
					done <- served{err: err}
					return
				}
				t.Cleanup(func() { c.Close() })
				c.SetReadDeadline(time.Now().Add(rampWindow + 3*time.Second))
				_, err = c.Read(make([]byte, 16)) // the server's name: connected
				done <- served{time.Since(t0), err}
			}()
		}
		early := 0
		for range maxconn {
			s := <-done
			if s.err != nil {
				t.Fatalf("a queued session was not served during the ramp: %v", s.err)
			}
			if s.at < rampWindow/4 {
				early++
			}
		}
		if early > maxconn/2 {
			t.Errorf("%d of %d sessions started in the first quarter of the ramp: maxconn did not ramp", early, maxconn)
		}
	})
}
