package session_test

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/admin"
	"ringproxy/session/health"
	"ringproxy/session/testbed"
)

// redisRoleCheck is the Redis recipe of deploy/examples/redis.toml at a
// test's pace: AUTH, PING, INFO replication wanting role:master, the
// role step bounded by its own short timeout.
func redisRoleCheck(password string) *session.Check {
	step := func(a health.Action, s string) health.Step { return health.Step{Action: a, Data: []byte(s)} }
	role := step(health.ExpectBytes, "role:master")
	role.Timeout = 50 * time.Millisecond
	return &session.Check{Kind: "tcp", Interval: 300 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 2, Fall: 2,
		Steps: []health.Step{
			step(health.SendBytes, "AUTH "+password+"\r\n"), step(health.ExpectBytes, "+OK"),
			step(health.SendBytes, "PING\r\n"), step(health.ExpectBytes, "+PONG"),
			step(health.SendBytes, "INFO replication\r\n"), role,
		}}
}

// whichRedis opens a session through the proxy and asks the server it
// reached for its name.
func whichRedis(t *testing.T, addr netip.AddrPort, password string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "AUTH %s\r\nWHO\r\n", password)
	r := bufio.NewReader(c)
	var lines []string
	for range 2 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("through the proxy: %v after %q", err, lines)
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	if lines[0] != "+OK" {
		t.Fatalf("AUTH through the proxy: %q", lines)
	}
	return strings.TrimPrefix(lines[1], "+")
}

// sessionsGo asserts that n new sessions all reach server want.
func sessionsGo(t *testing.T, addr netip.AddrPort, want string, n int) {
	t.Helper()
	got := map[string]int{}
	for range n {
		got[whichRedis(t, addr, "pw")]++
	}
	if got[want] != n {
		t.Errorf("sessions reached %v, want all %d on %s", got, n, want)
	}
}

// checkStatus is a server's check_status in the admin socket's show stat.
func checkStatus(t *testing.T, p *session.Proxy, server string) string {
	t.Helper()
	out := admin.Run(p, "show stat")
	lines := strings.Split(out, "\n")
	col := -1
	for i, f := range strings.Split(strings.TrimPrefix(lines[0], "# "), ",") {
		if f == "check_status" {
			col = i
		}
	}
	for _, l := range lines[1:] {
		if f := strings.Split(l, ","); len(f) > col && col >= 0 && f[0] == "app" && f[1] == server {
			return f[col]
		}
	}
	t.Fatalf("no row for %s in show stat:\n%s", server, out)
	return ""
}

// A Redis master/replica swap, checked by the role recipe through a real
// proxy: only the master is UP; after the roles flip the new master is UP
// within rise x interval and the old one DOWN within fall x interval, and
// new sessions go to the new master. show stat reports the checks as
// HAProxy does (L7OK, L7TOUT).
func TestRedisRoleSwap(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		r1 := testbed.StartRedis(t, "r1", "pw", true)
		r2 := testbed.StartRedis(t, "r2", "pw", false)
		cfg := testConfig(eng, r1.Addr(), r2.Addr())
		be := cfg.Backends[0]
		be.Servers[0].Name, be.Servers[1].Name = "r1", "r2"
		be.Check = redisRoleCheck("pw")
		p, addr := startProxy(t, cfg)

		// Servers start UP; the replica's first checks take it out.
		testbed.WaitFor(t, 3*time.Second, func() bool { return !serverUp(p, "r2") }, "the replica r2 to go DOWN")
		if !serverUp(p, "r1") {
			t.Fatal("the master r1 is DOWN")
		}
		sessionsGo(t, addr, "r1", 10)
		if got := checkStatus(t, p, "r2"); got != "L7TOUT" {
			t.Errorf("replica's check_status %q, want L7TOUT (its role step timed out)", got)
		}
		replicaReason := regexp.MustCompile(`^check app/r2 127\.0\.0\.1:\d+: step 6 expect: timeout after 50ms, got "\$\d+\\r\\n# Replication\\r\\nrole:slave`)
		if st := p.Snapshot().Backends[0].Servers[1].Check; !replicaReason.MatchString(st.LastError) {
			t.Errorf("replica's last error %q", st.LastError)
		}

		r1.SetMaster(false)
		r2.SetMaster(true)
		flipped := time.Now()
		var up, down time.Duration
		testbed.WaitFor(t, 5*time.Second, func() bool {
			if up == 0 && serverUp(p, "r2") {
				up = time.Since(flipped)
			}
			if down == 0 && !serverUp(p, "r1") {
				down = time.Since(flipped)
			}
			return up > 0 && down > 0
		}, "r2 UP and r1 DOWN after the swap")
		// The next check comes within interval +10%, the rest at the fast
		// interval; a failing check lasts its role step's timeout. 200ms
		// is for scheduling on a loaded machine.
		ck := be.Check
		if limit := time.Duration(ck.Rise)*ck.Interval + 200*time.Millisecond; up > limit {
			t.Errorf("new master UP %v after the swap, want within rise x interval (%v)", up, limit)
		}
		if limit := time.Duration(ck.Fall)*ck.Interval + ck.Steps[5].Timeout + 200*time.Millisecond; down > limit {
			t.Errorf("old master DOWN %v after the swap, want within fall x interval (%v)", down, limit)
		}
		t.Logf("after the swap: new master UP in %v, old one DOWN in %v", up, down)
		sessionsGo(t, addr, "r2", 10)
		testbed.WaitFor(t, 2*time.Second, func() bool { return checkStatus(t, p, "r2") == "L7OK" }, "the new master's check_status to be L7OK")
		if got := checkStatus(t, p, "r1"); got != "L7TOUT" {
			t.Errorf("old master's check_status %q, want L7TOUT", got)
		}
	})
}

// Checks may go elsewhere than the traffic: here every server's checks
// go to a Patroni stand-in's REST port while sessions go to the server,
// and only the leader takes them.
func TestCheckOnAnotherPort(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		a, b := testbed.StartNamed(t, "a"), testbed.StartNamed(t, "b")
		pa, pb := testbed.StartPatroni(t, false), testbed.StartPatroni(t, true)
		cfg := testConfig(eng, a.Addr(), b.Addr())
		be := cfg.Backends[0]
		be.Servers[0].Name, be.Servers[1].Name = "a", "b"
		be.Check = &session.Check{Kind: "http", Path: "/primary", ExpectStatus: 200, Interval: 200 * time.Millisecond,
			Timeout: 100 * time.Millisecond, Rise: 2, Fall: 2, Port: 1} // the check's port, each server's own below wins
		be.Servers[0].CheckPort, be.Servers[1].CheckPort = pa.Addr().Port(), pb.Addr().Port()
		p, addr := startProxy(t, cfg)
		testbed.WaitFor(t, 3*time.Second, func() bool { return !serverUp(p, "a") }, "a (not the leader) to go DOWN")
		for range 10 {
			if n := whoOnce(t, netip.Addr{}, addr); n != "b" {
				t.Fatalf("a session reached %s, want b, the leader", n)
			}
		}
		pa.SetLeader(true)
		pb.SetLeader(false)
		testbed.WaitFor(t, 3*time.Second, func() bool { return serverUp(p, "a") && !serverUp(p, "b") }, "the switchover")
		for range 10 {
			if n := whoOnce(t, netip.Addr{}, addr); n != "a" {
				t.Fatalf("after the switchover a session reached %s, want a", n)
			}
		}
		if pa.Hits("/primary") < 2 || pb.Hits("/primary") < 2 || a.Accepted() != 10 || b.Accepted() != 10 {
			t.Errorf("checks %d and %d, sessions %d and %d: checks must go to the REST ports, sessions to the servers",
				pa.Hits("/primary"), pb.Hits("/primary"), a.Accepted(), b.Accepted())
		}
	})
}
