package session_test

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// dialFrom dials addr from loopback address src.
func dialFrom(src netip.Addr, addr netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	return d.Dial("tcp", addr.String())
}

// refusedFrom says whether a session from src is closed without an answer.
func refusedFrom(t *testing.T, src netip.Addr, addr netip.AddrPort) bool {
	c, err := dialFrom(src, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 16)
	n, err := c.Read(b)
	if err != nil && n == 0 {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("session from %v neither served nor closed", src)
		}
		return true
	}
	return false
}

func TestAccessListsAtAccept(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg, _ := named(t, eng, "roundrobin", "a")
		cfg.Frontends[0].Allow = []netip.Prefix{netip.MustParsePrefix("127.1.0.0/16")}
		cfg.Frontends[0].Deny = []netip.Prefix{netip.MustParsePrefix("127.1.6.0/24")}
		p, addr := startProxy(t, cfg)
		for _, c := range []struct {
			src     string
			refused bool
		}{
			{"127.1.0.5", false}, // allowed
			{"127.1.6.9", true},  // denied, though inside allow
			{"127.2.0.1", true},  // outside allow
			{"127.0.0.1", true},
		} {
			if got := refusedFrom(t, netip.MustParseAddr(c.src), addr); got != c.refused {
				t.Errorf("client %s: refused %v, want %v", c.src, got, c.refused)
			}
		}
		testbed.WaitFor(t, time.Second, func() bool {
			return p.Stats().AcceptOutcomes[session.AcceptDenied] == 3
		}, "3 denied accepts counted")
		if st := p.Stats(); st.Accepted != 1 {
			t.Fatalf("sessions started %d, want 1", st.Accepted)
		}
	})
}

func TestPerSourceRateClosesExcess(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg, _ := named(t, eng, "roundrobin", "a")
		cfg.Frontends[0].PerSourceRate = 5
		p, addr := startProxy(t, cfg)
		noisy := netip.MustParseAddr("127.1.0.7")
		served := 0
		for i := 0; i < 15; i++ {
			if !refusedFrom(t, noisy, addr) {
				served++
			}
		}
		if served < 4 || served > 7 {
			t.Fatalf("15 quick connections from one source at 5/s: %d served", served)
		}
		if refusedFrom(t, netip.MustParseAddr("127.1.0.8"), addr) {
			t.Fatal("another source was refused")
		}
		testbed.WaitFor(t, time.Second, func() bool {
			return p.Stats().AcceptOutcomes[session.AcceptSourceRate] == uint64(15-served)
		}, "the excess counted")
	})
}

// rate_limit holds new sessions back like HAProxy's rate-limit sessions:
// clients wait in the backlog, none is refused.
func TestFrontendRateLimitDelaysNoneRefused(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg, _ := named(t, eng, "roundrobin", "a")
		cfg.Frontends[0].RateLimit = 20
		p, addr := startProxy(t, cfg)
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var times []time.Duration
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name, c := who(t, netip.Addr{}, addr)
				c.Close()
				mu.Lock()
				times = append(times, time.Since(start))
				mu.Unlock()
				if name != "a" {
					t.Errorf("served by %q", name)
				}
			}()
		}
		wg.Wait()
		early := 0
		for _, d := range times {
			if d < 500*time.Millisecond {
				early++
			}
		}
		if len(times) != 40 || early > 26 {
			t.Fatalf("40 clients at 20/s: %d served, %d within 500ms", len(times), early)
		}
		if st := p.Stats(); st.Paused[session.LimitRate] == 0 || st.Accepted != 40 {
			t.Fatalf("rate pauses %d, accepted %d", st.Paused[session.LimitRate], st.Accepted)
		}
	})
}
