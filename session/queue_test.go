package session_test

import (
	"net"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// Server maxconn = 2, 10 concurrent long sessions: at most 2 at the server
// at once, all 10 served, the waits show in the counters.
func TestServerMaxconnQueues(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		hold := testbed.StartHold(t)
		cfg := testConfig(eng, hold.Addr())
		cfg.Backends[0].Servers[0].MaxConn = 2
		cfg.Backends[0].TimeoutQueue = 10 * time.Second
		p, addr := startProxy(t, cfg)
		if served := holdClients(t, addr, 10, 200*time.Millisecond); served != 10 {
			t.Fatalf("%d of 10 clients served", served)
		}
		if hold.MaxLive() != 2 {
			t.Fatalf("server maxconn 2: the server saw %d sessions at once", hold.MaxLive())
		}
		testbed.WaitFor(t, 2*time.Second, func() bool { return p.Stats().CurConns == 0 }, "sessions to end")
		st := p.Stats()
		if st.Queued < 8 || st.QueueWaitNs == 0 || st.CurQueue != 0 {
			t.Fatalf("queued %d (want >= 8), total wait %v, still queued %d", st.Queued, time.Duration(st.QueueWaitNs), st.CurQueue)
		}
		if st.Ended[session.ReasonDone] != 10 {
			t.Fatalf("ended cleanly %d of 10 (%+v)", st.Ended[session.ReasonDone], st.Ended)
		}
		t.Logf("queued %d sessions, %v in all", st.Queued, time.Duration(st.QueueWaitNs))
	})
}

// A session that waits longer than timeout_queue is closed and counted;
// the one holding the slot is not disturbed.
func TestQueueTimeout(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		hold := testbed.StartHold(t)
		cfg := testConfig(eng, hold.Addr())
		cfg.Backends[0].Servers[0].MaxConn = 1
		cfg.Backends[0].TimeoutQueue = 200 * time.Millisecond
		p, addr := startProxy(t, cfg)
		first, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		first.Write([]byte("a"))
		b := make([]byte, 1)
		first.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := first.Read(b); err != nil {
			t.Fatal(err)
		}
		took, err := testbed.DialExpectClose(addr, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took < 150*time.Millisecond || took > 2*time.Second {
			t.Fatalf("queued client closed after %v, want about 200ms", took)
		}
		testbed.WaitFor(t, time.Second, func() bool { return p.Stats().Ended[session.ReasonQueueTimeout] == 1 }, "a queue-timeout count")
		first.Write([]byte("b"))
		if _, err := first.Read(b); err != nil || b[0] != 'b' {
			t.Fatalf("the session holding the slot: %q %v", b, err)
		}
	})
}
