package session_test

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// stats is server name's row of a snapshot.
func stats(t *testing.T, p *session.Proxy, name string) session.ServerStats {
	t.Helper()
	for _, s := range p.Snapshot().Backends[0].Servers {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no server %s", name)
	return session.ServerStats{}
}

// failOn opens sessions until server name has failed n more connects,
// one at a time so the checker sees each failure's streak.
func failOn(t *testing.T, p *session.Proxy, addr netip.AddrPort, name string, n int) {
	t.Helper()
	want := stats(t, p, name).ConnFailures + uint64(n)
	for range 100 {
		if stats(t, p, name).ConnFailures >= want {
			return
		}
		whoOnce(t, netip.Addr{}, addr)
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s failed %d connects, want %d", name, stats(t, p, name).ConnFailures, want)
}

// Without any active check (nginx's max_fails, fail_timeout and backup):
// a dead primary is marked down after error_limit connect failures on
// live traffic and sessions move to the other primary; once every primary
// is out they go to the backup; observe_downtime later the primaries take
// sessions again. show stat counts it (hanafail) and says DOWN.
func TestObserveWithoutChecks(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		dead := testbed.DeadAddr(t)
		p2 := startRestartable(t, "p2")
		bk := testbed.StartNamed(t, "bk")
		cfg := testConfig(eng, dead, p2.addr, bk.Addr())
		be := cfg.Backends[0]
		be.Retries = 1
		for i, n := range []string{"p1", "p2", "bk"} {
			be.Servers[i].Name = n
		}
		be.Servers[2].Backup = true
		const downtime = 1500 * time.Millisecond
		be.Observe = &session.Observe{ErrorLimit: 3, OnError: "mark-down", Downtime: downtime}
		p, addr := startProxy(t, cfg)

		failOn(t, p, addr, "p1", 3)
		testbed.WaitFor(t, time.Second, func() bool { return !serverUp(p, "p1") }, "p1 marked down after 3 failures")
		downAt := time.Now()
		failed := stats(t, p, "p1").ConnFailures
		if got := spread(t, addr, 10); got["p2"] != 10 {
			t.Errorf("p1 marked down, sessions went %v", got)
		}
		if n := stats(t, p, "p1").ConnFailures; n != failed {
			t.Errorf("p1 marked down still tried: %d failures, then %d", failed, n)
		}
		if got := statField(t, p, "p1", "hanafail"); got != "1" {
			t.Errorf("hanafail %q, want 1", got)
		}
		if got := statField(t, p, "p1", "status"); got != "DOWN" {
			t.Errorf("status %q, want DOWN", got)
		}

		p2.stop() // every primary fails now: the backup takes the sessions
		for range 3 {
			if name := whoOnce(t, netip.Addr{}, addr); name != "bk" {
				t.Errorf("p2 failing and p1 down, a session reached %s", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		testbed.WaitFor(t, time.Second, func() bool { return !serverUp(p, "p2") }, "p2 marked down too")
		if got := spread(t, addr, 5); got["bk"] != 5 {
			t.Errorf("every primary down, sessions went %v", got)
		}

		p2.start(t)
		testbed.WaitFor(t, 2*downtime, func() bool { return serverUp(p, "p1") && serverUp(p, "p2") }, "the primaries back after observe_downtime")
		if d := time.Since(downAt); d < downtime-100*time.Millisecond {
			t.Errorf("p1 back %v after it was marked down, want observe_downtime %v", d, downtime)
		}
		testbed.WaitFor(t, time.Second, func() bool { return whoOnce(t, netip.Addr{}, addr) == "p2" }, "sessions back on p2")
	})
}

// With a regular check, error_limit failures on live traffic act as
// on_error says, while the check (on another port, which answers) passes:
// mark-down takes the server DOWN at once, sudden-death leaves it one
// failed check from DOWN, fail-check counts one failed check of fall,
// fastinter only runs the next check soon. show stat says HANA.
func TestObserveOnError(t *testing.T) {
	cases := []struct {
		mode string
		// rounds of error_limit failures, and the status after each
		status []string
	}{
		{"mark-down", []string{"DOWN"}},
		{"sudden-death", []string{"UP 1/3", "DOWN"}},
		{"fail-check", []string{"UP 2/3", "UP 1/3", "DOWN"}},
		{"fastinter", []string{"UP", "UP"}},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			forEngines(t, func(t *testing.T, eng string) {
				dead := testbed.DeadAddr(t)
				live := testbed.StartNamed(t, "check")
				a := testbed.StartNamed(t, "a")
				cfg := testConfig(eng, dead, a.Addr())
				be := cfg.Backends[0]
				be.Retries = 1
				be.Servers[0].Name, be.Servers[1].Name = "s", "a"
				be.Servers[0].CheckPort = live.Addr().Port() // its check passes, its traffic fails
				be.Check = &session.Check{Kind: "tcp", Interval: 6 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3}
				be.Observe = &session.Observe{ErrorLimit: 2, OnError: c.mode}
				p, addr := startProxy(t, cfg)
				testbed.WaitFor(t, 2*time.Second, func() bool { return stats(t, p, "s").Check.Checks > 0 }, "s's first check")
				checks := stats(t, p, "s").Check.Checks

				for i, want := range c.status {
					failOn(t, p, addr, "s", 2)
					testbed.WaitFor(t, time.Second, func() bool { return statField(t, p, "s", "status") == want },
						"status "+want+" after "+c.mode)
					if got := statField(t, p, "s", "hanafail"); got != strconv.Itoa(i+1) {
						t.Errorf("hanafail %s after %d rounds", got, i+1)
					}
				}
				if c.mode != "fastinter" {
					if got := statField(t, p, "s", "check_status"); got != "HANA" {
						t.Errorf("check_status %q, want HANA", got)
					}
					return
				}
				// The next check comes at the fast interval (1.5s), not
				// the 6s interval.
				testbed.WaitFor(t, 3*time.Second, func() bool { return stats(t, p, "s").Check.Checks > checks && serverUp(p, "s") },
					"a check soon after fastinter")
			})
		})
	}
}
