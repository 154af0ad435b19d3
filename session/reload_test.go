package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// reloadConfig is generation i of TestReloadUnderTraffic's config, built
// from scratch (a running generation keeps its config): servers come and
// go, weights, the algorithm and the worker count change, and an extra
// frontend is bound on odd generations only.
func reloadConfig(eng string, i int, web, extra netip.AddrPort, s [3]netip.AddrPort) *session.Config {
	var servers []netip.AddrPort
	switch i % 3 {
	case 0:
		servers = []netip.AddrPort{s[0], s[1]}
	case 1:
		servers = []netip.AddrPort{s[0], s[1], s[2]}
	case 2:
		servers = []netip.AddrPort{s[1], s[2]}
	}
	cfg := testConfig(eng, servers...)
	cfg.Global.Grace = 30 * time.Second
	cfg.Global.Workers = 1 + (i+1)%3 // 2, 3, 1, 2, ...: sockets regroup
	cfg.Frontends[0].Binds = []netip.AddrPort{web}
	be := cfg.Backends[0]
	if i%2 == 1 {
		be.Balance = "leastconn"
	}
	for j, sv := range be.Servers {
		sv.Name = "s" + sv.Address.String() // stable names: a server keeps its name across generations
		sv.Weight = 50 + 25*((i+j)%4)
	}
	if i%2 == 1 {
		cfg.Frontends = append(cfg.Frontends, &session.Frontend{
			Name: "extra", Binds: []netip.AddrPort{extra}, BackendName: "app", Backend: be,
			TimeoutClient: 30 * time.Second,
		})
	}
	return cfg
}

// echoOnce sends a random message and wants it back whole.
func echoOnce(addr netip.AddrPort, rng *rand.Rand) error {
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := make([]byte, 1+rng.IntN(8<<10))
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read %d bytes back: %w", len(msg), err)
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

// Ten reloads under traffic, each changing the config (servers added and
// removed, weights, algorithm, workers, a frontend added and removed): no short
// connection fails, no long transfer loses or changes a byte, and every
// old generation drains without a killed session or a refused client.
func TestReloadUnderTraffic(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		var s [3]netip.AddrPort
		for i := range s {
			s[i] = testbed.StartEcho(t).Addr()
		}
		a := testbed.FreeAddrs(t, 2)
		web, extra := a[0], a[1]
		cur, err := session.New(reloadConfig(eng, 0, web, extra, s), quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		if err := cur.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cur.Shutdown(time.Second) }()

		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []error
		fail := func(err error) {
			mu.Lock()
			failures = append(failures, err)
			mu.Unlock()
		}
		var shorts, longs atomic.Int64
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 1))
				for ctx.Err() == nil {
					if err := echoOnce(web, rng); err != nil {
						fail(fmt.Errorf("short connection: %w", err))
					}
					shorts.Add(1)
				}
			}()
		}
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seed := int64(g) * 1000; ctx.Err() == nil; seed++ {
					if _, err := testbed.IntegrityRun(context.Background(), web, 24<<20, seed); err != nil {
						fail(fmt.Errorf("long transfer: %w", err))
					}
					longs.Add(1)
				}
			}()
		}

		var olds []*session.Proxy
		rng := rand.New(rand.NewPCG(7, 7))
		for i := 1; i <= 10; i++ {
			time.Sleep(150 * time.Millisecond)
			next, err := session.New(reloadConfig(eng, i, web, extra, s), quietLogger())
			if err != nil {
				t.Fatalf("reload %d: %v", i, err)
			}
			next.Inherit(cur)
			if err := next.Start(); err != nil {
				t.Fatalf("reload %d: start: %v", i, err)
			}
			old := cur
			cur = next
			olds = append(olds, old)
			go old.Shutdown(30 * time.Second)
			// The extra frontend serves in odd generations and is gone in
			// even ones, once the old generation has closed its socket.
			if i%2 == 1 {
				if err := echoOnce(extra, rng); err != nil {
					t.Errorf("reload %d: the added frontend: %v", i, err)
				}
			} else {
				testbed.WaitFor(t, 2*time.Second, func() bool {
					c, err := net.Dial("tcp", extra.String())
					if err == nil {
						c.Close()
					}
					return err != nil
				}, fmt.Sprintf("reload %d: the removed frontend to close", i))
			}
		}
		time.Sleep(300 * time.Millisecond)
		stop()
		wg.Wait()
		for _, err := range failures {
			t.Error(err)
		}
		t.Logf("%d short connections, %d transfers of 24 MiB both ways across 10 reloads", shorts.Load(), longs.Load())
		if shorts.Load() < 100 || longs.Load() < 3 {
			t.Errorf("too little traffic to mean anything: %d short, %d long", shorts.Load(), longs.Load())
		}
		for i, old := range olds {
			select {
			case <-old.Done():
			case <-time.After(30 * time.Second):
				t.Fatalf("generation %d still running after its sessions ended", i)
			}
			st := old.Stats()
			if st.Ended[session.ReasonKilled] != 0 || st.AcceptOutcomes[session.AcceptStopping] != 0 {
				t.Errorf("generation %d: %d sessions killed, %d clients closed at stop; want 0", i,
					st.Ended[session.ReasonKilled], st.AcceptOutcomes[session.AcceptStopping])
			}
		}
		if st := cur.Stats(); st.Accepted == 0 {
			t.Error("the last generation served nothing")
		}
	})
}

// A reload keeps what the checks found: a server DOWN in the old
// generation starts DOWN in the new one (no client is sent to it while
// the new checks warm up) unless its address changed, and comes back UP
// after rise checks once it answers.
func TestReloadKeepsHealth(t *testing.T) {
	a := testbed.StartNamed(t, "a")
	dead := testbed.DeadAddr(t)
	mk := func(bAddr netip.AddrPort, interval time.Duration) *session.Config {
		cfg := testConfig("uring", a.Addr(), bAddr)
		cfg.Backends[0].Servers[0].Name, cfg.Backends[0].Servers[1].Name = "a", "b"
		cfg.Backends[0].Check = fastCheck("tcp")
		cfg.Backends[0].Check.Interval = interval
		return cfg
	}
	old, addr := startProxy(t, mk(dead, 100*time.Millisecond))
	testbed.WaitFor(t, 3*time.Second, func() bool { return !serverUp(old, "b") }, "b to go DOWN")

	reload := func(from *session.Proxy, cfg *session.Config) *session.Proxy {
		cfg.Frontends[0].Binds = []netip.AddrPort{addr}
		return reloadTo(t, from, cfg)
	}
	next := reload(old, mk(dead, time.Hour)) // its first check comes within a second
	if serverUp(next, "b") {
		t.Fatal("b, DOWN before the reload, starts UP after it")
	}
	for range 10 {
		if n := whoOnce(t, netip.Addr{}, addr); n != "a" {
			t.Fatalf("a client reached %q after the reload", n)
		}
	}
	// Same name, new address: nothing is known about it yet.
	b := testbed.StartNamed(t, "b")
	third := reload(next, mk(b.Addr(), time.Hour))
	if !serverUp(third, "b") {
		t.Fatal("b at a new address starts DOWN: only its old address was known dead")
	}
}

// Right after each of many reloads a lone client is served: a wakeup the
// old generation's accept took as it stopped must not leave the client
// waiting until another one arrives.
func TestReloadServesLoneClient(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cur, addr := startProxy(t, testConfig(eng, echo.Addr()))
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range 40 {
			cfg := testConfig(eng, echo.Addr())
			cfg.Frontends[0].Binds = []netip.AddrPort{addr}
			cur = reloadTo(t, cur, cfg)
			if err := echoOnce(addr, rng); err != nil {
				t.Fatalf("reload %d: a lone client: %v", i, err)
			}
		}
	})
}

// A client the old generation had parked at its maxconn when the reload
// came is handed to the new generation, which has room, instead of
// waiting for the old sessions and being closed when the grace ends.
func TestReloadHandsParkedClientsOver(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Global.Workers, cfg.Global.MaxConn = 1, 1
		old, addr := startProxy(t, cfg)
		rng := rand.New(rand.NewPCG(3, 4))
		a, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close() // holds the only slot past the old generation's grace
		if _, err := a.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		b, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		testbed.WaitFor(t, 2*time.Second, func() bool { return old.Stats().Parked > 0 }, "the second client to be parked")

		cfg = testConfig(eng, echo.Addr())
		cfg.Global.Workers = 1
		cfg.Frontends[0].Binds = []netip.AddrPort{addr}
		reloadTo(t, old, cfg)
		msg := []byte("handed over\n")
		b.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := b.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("the parked client after the reload: %q, %v", got, err)
		}
		<-old.Done()
		if st := old.Stats(); st.HandedOver != 1 || st.AcceptOutcomes[session.AcceptStopping] != 0 {
			t.Errorf("old generation: handed over %d, closed at stop %d; want 1 and 0", st.HandedOver, st.AcceptOutcomes[session.AcceptStopping])
		}
		if err := echoOnce(addr, rng); err != nil {
			t.Errorf("after the reload: %v", err)
		}
	})
}

// A reload whose generation cannot start (a new address is taken) leaves
// nothing behind: no goroutine, no fd, and the old generation serves on.
func TestFailedReloadLeavesNothing(t *testing.T) {
	echo := testbed.StartEcho(t)
	cur, addr := startProxy(t, testConfig("uring", echo.Addr()))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fds := func() int { d, _ := os.ReadDir("/proc/self/fd"); return len(d) }
	goroutines, files := runtime.NumGoroutine(), fds()
	for range 10 {
		cfg := testConfig("uring", echo.Addr())
		cfg.Log.Access = true
		cfg.Frontends[0].Binds = []netip.AddrPort{addr, netip.MustParseAddrPort(busy.Addr().String())}
		next, err := session.New(cfg, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		next.SetAccessLog(io.Discard)
		next.Inherit(cur)
		if err := next.Start(); err == nil {
			t.Fatal("a generation started on an address in use")
		}
	}
	time.Sleep(100 * time.Millisecond)
	if g, f := runtime.NumGoroutine(), fds(); g > goroutines+2 || f != files {
		t.Errorf("10 failed reloads: goroutines %d → %d, fds %d → %d", goroutines, g, files, f)
	}
	if err := echoOnce(addr, rand.New(rand.NewPCG(5, 6))); err != nil {
		t.Errorf("the running generation after failed reloads: %v", err)
	}
}

// reloadTo starts a generation of cfg that takes over from old, and
// retires old with a second of grace (the old generation's sessions past
// it are killed).
func reloadTo(t *testing.T, old *session.Proxy, cfg *session.Config) *session.Proxy {
	t.Helper()
	next, err := session.New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	next.Inherit(old)
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { next.Shutdown(time.Second) })
	go old.Shutdown(time.Second)
	return next
}
