package session_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// disable frontend, as HAProxy's: its sockets refuse clients at once
// (not a backlog nobody serves), its sessions go on; enable listens
// again on every worker's socket; a reload enables it.
func TestDisableFrontend(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Frontends[0].Binds = testbed.FreeAddrs(t, 1)
		p, addr := startProxy(t, cfg)
		rng := rand.New(rand.NewPCG(1, 2))
		held, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		if err := echoOn(held, rng); err != nil { // accepted: not in the backlog the disable resets
			t.Fatal(err)
		}

		if err := p.SetFrontendEnabled("web", false); err != nil {
			t.Fatal(err)
		}
		if err := p.SetFrontendEnabled("web", false); !errors.Is(err, session.ErrUnchanged) {
			t.Errorf("disable twice: %v, want ErrUnchanged", err)
		}
		if err := p.SetFrontendEnabled("nope", false); !errors.Is(err, session.ErrNoFrontend) {
			t.Errorf("disable nope: %v, want ErrNoFrontend", err)
		}
		for i := 0; i < 20; i++ { // every worker's socket
			c, err := net.DialTimeout("tcp", addr.String(), time.Second)
			if err == nil {
				c.Close()
				t.Fatalf("connect %d to a disabled frontend succeeded", i)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("connect %d to a disabled frontend: %v, want connection refused", i, err)
			}
		}
		if !p.Snapshot().Frontends[0].Disabled {
			t.Error("the snapshot does not say the frontend is disabled")
		}
		if err := echoOn(held, rng); err != nil {
			t.Fatalf("a session of the disabled frontend: %v", err)
		}

		if err := p.SetFrontendEnabled("web", true); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if err := echoOnce(addr, rng); err != nil {
				t.Fatalf("session %d after enable: %v", i, err)
			}
		}
		if p.Snapshot().Frontends[0].Disabled {
			t.Error("the snapshot says the frontend is still disabled")
		}

		if err := p.SetFrontendEnabled("web", false); err != nil {
			t.Fatal(err)
		}
		next := reloadTo(t, p, testConfigOn(eng, cfg.Frontends[0].Binds, echo.Addr()))
		for i := 0; i < 20; i++ {
			if err := echoOnce(addr, rng); err != nil {
				t.Fatalf("session %d after a reload of a disabled frontend: %v", i, err)
			}
		}
		if next.Snapshot().Frontends[0].Disabled {
			t.Error("the new generation's frontend is disabled")
		}
	})
}

func testConfigOn(eng string, binds []netip.AddrPort, servers ...netip.AddrPort) *session.Config {
	cfg := testConfig(eng, servers...)
	cfg.Frontends[0].Binds = binds
	return cfg
}

// echoOn sends a random message on c and wants it back whole.
func echoOn(c net.Conn, rng *rand.Rand) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	msg := make([]byte, 1+rng.IntN(4<<10))
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

// What an operator set stays across a reload, for the servers that stay:
// drain and maint (its checks paused in the new generation too), and a
// runtime weight unless the new config changes that server's weight.
func TestAdminStateSurvivesReload(t *testing.T) {
	s1, s2, s3 := testbed.StartEcho(t), testbed.StartEcho(t), testbed.StartEcho(t)
	binds := testbed.FreeAddrs(t, 1)
	config := func(w3 int) *session.Config {
		cfg := testConfigOn("uring", binds, s1.Addr(), s2.Addr(), s3.Addr())
		cfg.Backends[0].Check = &session.Check{Kind: "tcp", Interval: 50 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 2}
		cfg.Backends[0].Servers[2].Weight = w3
		return cfg
	}
	p, _ := startProxy(t, config(100))
	for _, err := range []error{
		p.SetServerState("app", "s1", session.AdminDrain),
		p.SetServerState("app", "s2", session.AdminMaint),
		p.SetServerWeight("app", "s3", 7),
		p.SetServerWeight("app", "s1", 9),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	next := reloadTo(t, p, config(100))
	time.Sleep(200 * time.Millisecond) // checks run
	sv := next.Snapshot().Backends[0].Servers
	if sv[0].Admin != "drain" || !sv[0].Up || sv[0].Weight != 9 {
		t.Errorf("s1 after reload: %+v, want drained, UP, weight 9", sv[0])
	}
	if sv[1].Admin != "maint" || sv[1].Up || sv[1].Check == nil || !sv[1].Check.Paused || sv[1].Check.Checks != 0 {
		t.Errorf("s2 after reload: %+v %+v, want maint, DOWN, unchecked", sv[1], sv[1].Check)
	}
	if sv[2].Admin != "ready" || sv[2].Weight != 7 {
		t.Errorf("s3 after reload: %+v, want ready, weight 7", sv[2])
	}
	// The config changed s3's weight: the config's wins.
	third := reloadTo(t, next, config(50))
	if w := third.Snapshot().Backends[0].Servers[2].Weight; w != 50 {
		t.Errorf("s3's weight after a reload that changed it in the config: %d, want 50", w)
	}
	if err := third.SetServerState("app", "s2", session.AdminReady); err != nil {
		t.Fatal(err)
	}
	if s := third.Snapshot().Backends[0].Servers[1]; !s.Up || s.Check.Paused {
		t.Errorf("s2 out of maint: %+v, want UP and checked", s)
	}
}
