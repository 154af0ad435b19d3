package session_test

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// holdSessions opens n sessions through addr and waits until each has
// echoed a byte, so each is connected to its server.
func holdSessions(t *testing.T, addr netip.AddrPort, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("echo through the proxy: %v", err)
		}
		conns = append(conns, c)
	}
	return conns
}

// Five sessions held at once make a peak of 5 for the frontend, the
// server and the backend, which stays when they end; the rate of the
// second they started in is about 5 a second (the burst may straddle two
// of the sampler's seconds: at least half of it lands in one), and it
// falls back to 0 once a second passes without a session.
func TestRatesAndPeaks(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		p, addr := startProxy(t, testConfig(eng, testbed.StartEcho(t).Addr()))
		start := time.Now()
		conns := holdSessions(t, addr, 5)
		snap := p.Snapshot()
		fe, be, srv := snap.Frontends[0], snap.Backends[0], snap.Backends[0].Servers[0]
		if fe.MaxSessions != 5 || srv.MaxSessions != 5 || be.MaxSessions != 5 || snap.Process.MaxConns != 5 {
			t.Errorf("peaks with 5 sessions open: frontend %d, server %d, backend %d, process %d; want 5 each",
				fe.MaxSessions, srv.MaxSessions, be.MaxSessions, snap.Process.MaxConns)
		}
		testbed.WaitFor(t, 4*time.Second, func() bool {
			r := p.Snapshot().Frontends[0].SessionRate
			return r.Max > 0 && r.Cur == 0
		}, "the burst's rate to be sampled, then a quiet second")
		snap = p.Snapshot()
		fe, be, srv = snap.Frontends[0], snap.Backends[0], snap.Backends[0].Servers[0]
		for what, r := range map[string]session.Rate{"process": snap.Process.SessionRate, "process connections": snap.Process.ConnRate,
			"frontend": fe.SessionRate, "frontend connections": fe.ConnRate, "backend": be.SessionRate, "server": srv.SessionRate} {
			if r.Max < 2.5 || r.Max > 5.5 {
				t.Errorf("%s: highest rate %v after 5 sessions in a burst, want 2.5 to 5.5", what, r.Max)
			}
			if r.Cur != 0 {
				t.Errorf("%s: rate %v a second after the last session, want 0", what, r.Cur)
			}
		}
		if srv.LastSession.Before(start.Add(-time.Second)) || srv.LastSession.After(time.Now()) || !be.LastSession.Equal(srv.LastSession) {
			t.Errorf("last session: server %v, backend %v; want the same, between %v and now", srv.LastSession, be.LastSession, start)
		}
		for _, c := range conns {
			c.Close()
		}
		testbed.WaitFor(t, 5*time.Second, func() bool { return p.Snapshot().Frontends[0].CurSessions == 0 }, "the sessions to end")
		snap = p.Snapshot()
		if fe, srv := snap.Frontends[0], snap.Backends[0].Servers[0]; fe.MaxSessions != 5 || srv.MaxSessions != 5 || snap.Backends[0].MaxSessions != 5 {
			t.Errorf("peaks after the sessions ended: frontend %d, server %d, backend %d; want 5 each", fe.MaxSessions, srv.MaxSessions, snap.Backends[0].MaxSessions)
		}
	})
}

// A server that refuses connects is retried once (retries 2) and then
// left for the other one (redispatch), and both are counted on it, as
// HAProxy counts wretr and wredis: the retry on the server retried, the
// redispatch on the server left. The server that took the session over
// counts neither.
func TestRetriesAndRedispatchesPerServer(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg := testConfig(eng, testbed.DeadAddr(t), testbed.StartEcho(t).Addr())
		cfg.Backends[0].Retries = 2
		p, addr := startProxy(t, cfg)
		for i := 0; i < 4; i++ {
			holdSessions(t, addr, 1)[0].Close()
		}
		snap := p.Snapshot()
		dead, live := snap.Backends[0].Servers[0], snap.Backends[0].Servers[1]
		if dead.Redispatches == 0 || dead.Retries != dead.Redispatches || dead.ConnFailures != 2*dead.Retries {
			t.Errorf("refusing server: %d retries, %d redispatches, %d connect failures; want n, n and 2n for n > 0",
				dead.Retries, dead.Redispatches, dead.ConnFailures)
		}
		if live.Retries != 0 || live.Redispatches != 0 || live.Sessions != 4 {
			t.Errorf("live server: %d retries, %d redispatches, %d sessions; want 0, 0, 4", live.Retries, live.Redispatches, live.Sessions)
		}
		if tot := snap.Backends[0].Totals(); tot.Retries != dead.Retries || tot.Redispatches != dead.Redispatches {
			t.Errorf("backend totals: %d retries, %d redispatches; want %d, %d", tot.Retries, tot.Redispatches, dead.Retries, dead.Redispatches)
		}
	})
}

// A server its checks take DOWN records when, and its downtime grows
// while it stays DOWN; its backend, whose other server is UP, never
// goes DOWN. A backend whose only server is DOWN does, once.
func TestServerAndBackendDowntime(t *testing.T) {
	cfg := testConfig("uring", testbed.StartEcho(t).Addr(), testbed.DeadAddr(t))
	cfg.Backends[0].Check = fastCheck("tcp")
	lone := &session.Backend{Name: "lone", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: time.Second,
		Check: fastCheck("tcp"), Servers: []*session.Server{{Name: "x", Address: testbed.DeadAddr(t), Weight: 1}}}
	cfg.Backends = append(cfg.Backends, lone)
	start := time.Now()
	p, _ := startProxy(t, cfg)
	testbed.WaitFor(t, 5*time.Second, func() bool {
		s := p.Snapshot()
		return !s.Backends[0].Servers[1].Up && !s.Backends[1].Servers[0].Up
	}, "the refusing servers to go DOWN")
	downAt := time.Now()
	first := p.Snapshot()
	time.Sleep(300 * time.Millisecond)
	snap := p.Snapshot()
	up, down, loneBe := snap.Backends[0].Servers[0], snap.Backends[0].Servers[1], snap.Backends[1]
	if down.LastChange.Before(start) || down.LastChange.After(downAt) || !first.Backends[0].Servers[1].LastChange.Equal(down.LastChange) {
		t.Errorf("DOWN server changed at %v, want once, between the start %v and %v", down.LastChange, start, downAt)
	}
	grew := time.Duration(down.Downtime - first.Backends[0].Servers[1].Downtime)
	if d := snap.Time.Sub(first.Time); grew < d-time.Millisecond || grew > d+time.Millisecond {
		t.Errorf("DOWN server's downtime grew %v in %v", grew, d)
	}
	if want := snap.Time.Sub(down.LastChange); time.Duration(down.Downtime) != want {
		t.Errorf("DOWN server's downtime %v, want %v (since it went DOWN)", time.Duration(down.Downtime), want)
	}
	if up.Downtime != 0 || !up.LastChange.Before(start.Add(time.Second)) {
		t.Errorf("UP server: downtime %v, changed %v; want none since the start", time.Duration(up.Downtime), up.LastChange)
	}
	if be := snap.Backends[0]; be.DownTransitions != 0 || be.Downtime != 0 {
		t.Errorf("backend with an UP server: %d DOWN transitions, downtime %v; want none", be.DownTransitions, time.Duration(be.Downtime))
	}
	if loneBe.DownTransitions != 1 || loneBe.Downtime == 0 || !loneBe.LastChange.Equal(loneBe.Servers[0].LastChange) {
		t.Errorf("backend with its only server DOWN: %d DOWN transitions, downtime %v, changed %v (its server %v); want 1, some, the same",
			loneBe.DownTransitions, time.Duration(loneBe.Downtime), loneBe.LastChange, loneBe.Servers[0].LastChange)
	}
}
