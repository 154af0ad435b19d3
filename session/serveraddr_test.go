package session_test

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// traffic runs integrity sessions through addr from conns goroutines
// until stop, and counts them and the ones that failed.
type traffic struct {
	wg       sync.WaitGroup
	stop     atomic.Bool
	ok, bad  atomic.Int64
	mu       sync.Mutex
	firstErr error
}

func startTraffic(addr netip.AddrPort, conns, size int) *traffic {
	tr := &traffic{}
	for g := range conns {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := int64(0); !tr.stop.Load(); i++ {
				if _, err := testbed.IntegrityRun(context.Background(), addr, size, int64(g)<<32|i); err != nil {
					tr.bad.Add(1)
					tr.mu.Lock()
					if tr.firstErr == nil {
						tr.firstErr = err
					}
					tr.mu.Unlock()
					continue
				}
				tr.ok.Add(1)
			}
		}()
	}
	return tr
}

// waitRuns waits until n more sessions succeeded.
func (tr *traffic) waitRuns(t *testing.T, n int64) {
	t.Helper()
	want := tr.ok.Load() + n
	testbed.WaitFor(t, 20*time.Second, func() bool { return tr.ok.Load() >= want || tr.bad.Load() > 0 }, "traffic runs")
}

func (tr *traffic) end(t *testing.T) {
	t.Helper()
	tr.stop.Store(true)
	tr.wg.Wait()
	if n := tr.bad.Load(); n > 0 {
		t.Fatalf("%d of %d sessions failed; the first: %v", n, n+tr.ok.Load(), tr.firstErr)
	}
}

// set server addr under traffic: no session fails, every byte comes back
// (SHA-256), new sessions go to the new address, and a session on the
// old one goes on there. Then back again.
func TestSetServerAddrUnderTraffic(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		a, b := testbed.StartEcho(t), testbed.StartEcho(t)
		p, addr := startProxy(t, testConfig(eng, a.Addr()))
		held, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		if err := echoOn(held, rng); err != nil {
			t.Fatal(err)
		}
		tr := startTraffic(addr, 4, 256<<10)
		tr.waitRuns(t, 20)
		for _, move := range []struct{ from, to *testbed.Echo }{{a, b}, {b, a}} {
			old, err := p.SetServerAddr("app", "s1", move.to.Addr())
			if err != nil || old != move.from.Addr() {
				t.Fatalf("set server addr: was %v, %v; want %v", old, err, move.from.Addr())
			}
			tr.waitRuns(t, 20)
			// Sessions that started before the change may still be
			// connecting to the old address; none that starts after.
			before := move.from.Accepted()
			tr.waitRuns(t, 20)
			if after := move.from.Accepted(); after != before {
				t.Errorf("%d sessions reached the old address %v after the change", after-before, move.from.Addr())
			}
			if err := echoOn(held, rng); err != nil {
				t.Fatalf("the session held on %v broke: %v", a.Addr(), err)
			}
		}
		tr.end(t)
		if a.Accepted() < 20 || b.Accepted() < 20 {
			t.Errorf("accepted %d by the first address, %d by the second: want both used", a.Accepted(), b.Accepted())
		}
		if got := p.Snapshot().Backends[0].Servers[0]; got.Addr != a.Addr().String() || got.AddrChanges != 2 {
			t.Errorf("stats say address %s, %d changes; want %v, 2", got.Addr, got.AddrChanges, a.Addr())
		}
	})
}

// The checks follow the server to its new address, with check_port
// still applied: moved to a dead address it goes DOWN, moved back UP.
func TestSetServerAddrMovesChecks(t *testing.T) {
	live := testbed.StartEcho(t)
	checkAt := testbed.StartEcho(t) // the check endpoint: another port on the same IP
	dead := testbed.DeadAddr(t)
	cfg := testConfig("epoll", live.Addr())
	cfg.Backends[0].Check = &session.Check{Kind: "tcp", Interval: 25 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 1, Fall: 2}
	p, _ := startProxy(t, cfg)
	status := func() session.ServerStatus { return p.Servers()[0] }
	testbed.WaitFor(t, 5*time.Second, func() bool { return status().Check.Checks > 0 && status().Up }, "first check")
	if _, err := p.SetServerAddr("app", "s1", dead); err != nil {
		t.Fatal(err)
	}
	if st := status(); st.Addr != dead || st.Check.Addr != dead || st.Check.CheckAddr != dead {
		t.Fatalf("after the move: addr %v, check addr %v, check endpoint %v; want %v", st.Addr, st.Check.Addr, st.Check.CheckAddr, dead)
	}
	testbed.WaitFor(t, 5*time.Second, func() bool { return !status().Up }, "DOWN at the dead address")
	if _, err := p.SetServerAddr("app", "s1", live.Addr()); err != nil {
		t.Fatal(err)
	}
	testbed.WaitFor(t, 5*time.Second, func() bool { return status().Up }, "UP at the live address")

	// check_port: the checks go to the new IP at the configured port.
	cfg = testConfig("epoll", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), live.Addr().Port()))
	cfg.Backends[0].Check = &session.Check{Kind: "tcp", Interval: 25 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 1, Fall: 1}
	cfg.Backends[0].Servers[0].CheckPort = checkAt.Addr().Port()
	p, _ = startProxy(t, cfg)
	if _, err := p.SetServerAddr("app", "s1", live.Addr()); err != nil {
		t.Fatal(err)
	}
	want := netip.AddrPortFrom(live.Addr().Addr(), checkAt.Addr().Port())
	if got := p.Servers()[0].Check.CheckAddr; got != want {
		t.Fatalf("check endpoint %v after the move, want %v (new IP, check_port)", got, want)
	}
	n := checkAt.Accepted()
	testbed.WaitFor(t, 5*time.Second, func() bool { return checkAt.Accepted() > n }, "a check at the new IP's check_port")
}

// With balance = "consistent" a moved server keeps its place on the
// ring: every client it had follows it to the new address, and no other
// client moves.
func TestSetServerAddrKeepsHashSlot(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		na, nb, nc := testbed.StartNamed(t, "a"), testbed.StartNamed(t, "b"), testbed.StartNamed(t, "c")
		cfg := testConfig(eng, na.Addr(), nb.Addr())
		cfg.Backends[0].Balance = "consistent"
		p, addr := startProxy(t, cfg)
		from := func(i int) string {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i))}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 2)
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
			return string(buf[:1])
		}
		before := map[int]string{}
		for i := 1; i <= 40; i++ {
			before[i] = from(i)
		}
		if _, err := p.SetServerAddr("app", "s1", nc.Addr()); err != nil {
			t.Fatal(err)
		}
		moved := 0
		for i := 1; i <= 40; i++ {
			want := before[i]
			if want == "a" {
				want, moved = "c", moved+1
			}
			if got := from(i); got != want {
				t.Errorf("client 127.0.1.%d: %s before, %s after the move, want %s", i, before[i], got, want)
			}
		}
		if moved == 0 || moved == 40 {
			t.Fatalf("%d of 40 clients on s1: the test needs both servers used", moved)
		}
	})
}
