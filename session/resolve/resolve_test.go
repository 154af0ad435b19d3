package resolve

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"ringproxy/session/testbed"
)

func testConfig(z *testbed.Zone) Config {
	cfg := Defaults()
	cfg.Nameservers = []netip.AddrPort{z.Addr()}
	cfg.Timeout, cfg.Retries = 100*time.Millisecond, 0
	cfg.TTLMin, cfg.TTLMax = 50*time.Millisecond, time.Second
	cfg.HoldValid, cfg.HoldNX = 300*time.Millisecond, 200*time.Millisecond
	return cfg
}

func newResolver(t *testing.T, cfg Config) *Resolver {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func addrs(a Answer) string {
	var out []string
	for _, t := range a.Targets {
		out = append(out, t.Addr.String())
	}
	return strings.Join(out, " ")
}

func TestResolveHost(t *testing.T) {
	z := testbed.StartZone(t)
	z.Set(t, "app.internal", "app.internal. 30 IN A 10.0.0.2", "app.internal. 60 IN A 10.0.0.1", "app.internal. 10 IN AAAA 2001:db8::1")
	r := newResolver(t, testConfig(z))
	ans, err := r.Resolve(context.Background(), Query{Name: "app.internal", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	if got := addrs(ans); got != "10.0.0.1:8080 10.0.0.2:8080 [2001:db8::1]:8080" {
		t.Errorf("targets %s", got)
	}
	if ans.TTL != 10*time.Second || ans.Targets[0].Host != "app.internal" {
		t.Errorf("ttl %v, host %q", ans.TTL, ans.Targets[0].Host)
	}
	for name, want := range map[string]error{"nope.internal": ErrNXDomain} {
		if _, err := r.Resolve(context.Background(), Query{Name: name, Port: 1}); !errors.Is(err, want) || !strings.Contains(err.Error(), "resolve "+name+": nameserver "+z.Addr().String()) {
			t.Errorf("%s: %v, want %v naming the name and nameserver", name, err, want)
		}
	}
	z.Set(t, "mx.internal", "mx.internal. 30 IN MX 10 mail.internal.")
	if _, err := r.Resolve(context.Background(), Query{Name: "mx.internal", Port: 1}); !errors.Is(err, ErrNoRecord) {
		t.Errorf("a name without A/AAAA: %v, want ErrNoRecord", err)
	}
	z.Fail("down.internal", dns.RcodeServerFailure)
	if _, err := r.Resolve(context.Background(), Query{Name: "down.internal", Port: 1}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("SERVFAIL: %v", err)
	}
	z.Silence("slow.internal")
	start := time.Now()
	if _, err := r.Resolve(context.Background(), Query{Name: "slow.internal", Port: 1}); !errors.Is(err, ErrTimeout) {
		t.Errorf("a silent nameserver: %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("a silent nameserver took %v, timeout is 100ms for each of A and AAAA", took)
	}
}

// A second nameserver answers when the first is silent; a truncated UDP
// answer is asked again over TCP.
func TestNameserversInTurnAndTCP(t *testing.T) {
	dead, z := testbed.StartZone(t), testbed.StartZone(t)
	dead.Silence("app.internal")
	z.Set(t, "app.internal", "app.internal. 30 IN A 10.0.0.1")
	cfg := testConfig(z)
	cfg.Nameservers = []netip.AddrPort{dead.Addr(), z.Addr()}
	r := newResolver(t, cfg)
	if ans, err := r.Resolve(context.Background(), Query{Name: "app.internal", Port: 80}); err != nil || addrs(ans) != "10.0.0.1:80" {
		t.Fatalf("with the first nameserver silent: %v %v", addrs(ans), err)
	}
	z.Truncate(true)
	if ans, err := r.Resolve(context.Background(), Query{Name: "app.internal", Port: 80}); err != nil || addrs(ans) != "10.0.0.1:80" {
		t.Fatalf("truncated over UDP: %v %v", addrs(ans), err)
	}
}

func TestResolveSRV(t *testing.T) {
	z := testbed.StartZone(t)
	z.Set(t, "_http._tcp.web.service", "_http._tcp.web.service. 30 IN SRV 10 20 8081 web1.node.", "_http._tcp.web.service. 30 IN SRV 10 60 8082 web2.node.",
		"_http._tcp.web.service. 30 IN SRV 20 10 8083 web3.node.")
	z.Set(t, "web1.node", "web1.node. 30 IN A 10.0.1.1")
	z.Set(t, "web2.node", "web2.node. 5 IN A 10.0.1.2")
	z.Set(t, "web3.node", "web3.node. 30 IN AAAA 2001:db8::3")
	r := newResolver(t, testConfig(z))
	ans, err := r.Resolve(context.Background(), Query{Name: "_http._tcp.web.service", Kind: SRV})
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Addr: netip.MustParseAddrPort("10.0.1.2:8082"), Host: "web2.node", Priority: 10, Weight: 60},
		{Addr: netip.MustParseAddrPort("10.0.1.1:8081"), Host: "web1.node", Priority: 10, Weight: 20},
		{Addr: netip.MustParseAddrPort("[2001:db8::3]:8083"), Host: "web3.node", Priority: 20, Weight: 10},
	}
	if len(ans.Targets) != 3 {
		t.Fatalf("targets %+v", ans.Targets)
	}
	for i := range want {
		if ans.Targets[i] != want[i] {
			t.Errorf("target %d: %+v, want %+v", i, ans.Targets[i], want[i])
		}
	}
	if ans.TTL != 5*time.Second {
		t.Errorf("ttl %v, want the smallest, 5s", ans.TTL)
	}
	// web3's address came from the additional section: not asked again.
	if n := z.Asked("web3.node. AAAA"); n != 0 {
		t.Errorf("asked web3.node AAAA %d times though the SRV answer carried it", n)
	}
}

// events collects what a Watch reports.
type events struct {
	mu sync.Mutex
	ev []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.ev = append(e.ev, ev); e.mu.Unlock() }

func (e *events) wait(t *testing.T, n int, within time.Duration) []Event {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		e.mu.Lock()
		got := append([]Event(nil), e.ev...)
		e.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events after %v, want %d: %+v", len(got), within, n, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A changed record is picked up on the next re-resolution (TTL bounded by
// ttl_min), a failure keeps the last good answer for hold_valid, then
// the name has none until it resolves again.
func TestWatchFollowsChangesAndHolds(t *testing.T) {
	z := testbed.StartZone(t)
	z.Set(t, "db.internal", "db.internal. 0 IN A 10.0.0.1")
	r := newResolver(t, testConfig(z))
	var e events
	r.Watch(Query{Name: "db.internal", Port: 5432}, Answer{}, e.add)
	ev := e.wait(t, 1, time.Second)
	if ev[0].Err != nil || addrs(ev[0].Answer) != "10.0.0.1:5432" {
		t.Fatalf("first: %+v", ev[0])
	}
	z.Set(t, "db.internal", "db.internal. 0 IN A 10.0.0.9")
	ev = e.wait(t, 2, time.Second)
	if addrs(ev[1].Answer) != "10.0.0.9:5432" || ev[1].Err != nil {
		t.Fatalf("after the change: %+v", ev[1])
	}
	failedAt := time.Now()
	z.Fail("db.internal", dns.RcodeServerFailure)
	ev = e.wait(t, 3, time.Second)
	if !ev[2].Held || addrs(ev[2].Answer) != "10.0.0.9:5432" || !errors.Is(ev[2].Err, ErrRefused) {
		t.Fatalf("failing: %+v, want the last good answer held", ev[2])
	}
	ev = e.wait(t, 4, time.Second)
	if ev[3].Held || len(ev[3].Answer.Targets) != 0 || !errors.Is(ev[3].Err, ErrRefused) {
		t.Fatalf("after hold_valid: %+v, want no targets", ev[3])
	}
	if held := time.Since(failedAt); held < 250*time.Millisecond {
		t.Errorf("the answer was held %v, hold_valid is 300ms", held)
	}
	z.Set(t, "db.internal", "db.internal. 0 IN A 10.0.0.9")
	ev = e.wait(t, 5, time.Second)
	if addrs(ev[4].Answer) != "10.0.0.9:5432" || ev[4].Err != nil || ev[4].Held {
		t.Fatalf("resolving again: %+v", ev[4])
	}
	if len(e.wait(t, 5, 0)) != 5 {
		t.Error("an event repeated what the last one said")
	}
}

// NXDOMAIN keeps the last good answer for hold_nx after it was received
// (HAProxy's last_valid), a silent nameserver for hold_valid; a start
// answer (a reload's) counts as received then, so an unchanged answer
// reports nothing.
func TestWatchNXDomainTimeoutAndStartAnswer(t *testing.T) {
	z := testbed.StartZone(t)
	z.Set(t, "api.internal", "api.internal. 0 IN A 10.0.0.5")
	r := newResolver(t, testConfig(z))
	start, err := r.Resolve(context.Background(), Query{Name: "api.internal", Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	var e events
	r.Watch(Query{Name: "api.internal", Port: 443}, start, e.add)
	time.Sleep(200 * time.Millisecond)
	if got := e.wait(t, 0, 0); len(got) != 0 {
		t.Fatalf("an unchanged answer reported %+v", got)
	}
	z.Set(t, "api.internal") // no records: NXDOMAIN
	ev := e.wait(t, 1, time.Second)
	if !ev[0].Held || !errors.Is(ev[0].Err, ErrNXDomain) {
		t.Fatalf("NXDOMAIN: %+v, want held", ev[0])
	}
	ev = e.wait(t, 2, time.Second)
	if len(ev[1].Answer.Targets) != 0 || !errors.Is(ev[1].Err, ErrNXDomain) {
		t.Fatalf("after hold_nx: %+v", ev[1])
	}
	z.Set(t, "api.internal", "api.internal. 0 IN A 10.0.0.5")
	if ev = e.wait(t, 3, time.Second); addrs(ev[2].Answer) != "10.0.0.5:443" {
		t.Fatalf("back: %+v", ev[2])
	}
	z.Silence("api.internal")
	ev = e.wait(t, 4, time.Second)
	if !ev[3].Held || !errors.Is(ev[3].Err, ErrTimeout) {
		t.Fatalf("silent: %+v, want held", ev[3])
	}
}

// The TTL sets the next resolution, within ttl_min and ttl_max.
func TestWatchTTLBounds(t *testing.T) {
	z := testbed.StartZone(t)
	z.Set(t, "a.internal", "a.internal. 3600 IN A 10.0.0.1")
	z.Set(t, "b.internal", "b.internal. 0 IN A 10.0.0.1")
	cfg := testConfig(z)
	cfg.TTLMin, cfg.TTLMax = 100*time.Millisecond, 300*time.Millisecond
	r := newResolver(t, cfg)
	r.Watch(Query{Name: "a.internal", Port: 1}, Answer{}, nil)
	r.Watch(Query{Name: "b.internal", Port: 1}, Answer{}, nil)
	time.Sleep(1 * time.Second)
	a, b := z.Asked("a.internal. A"), z.Asked("b.internal. A")
	if a < 3 || a > 5 { // at 0, 300, 600, 900ms
		t.Errorf("a 1h TTL with ttl_max 300ms: asked %d times in 1s, want about 4", a)
	}
	if b < 8 || b > 11 { // every 100ms
		t.Errorf("a 0 TTL with ttl_min 100ms: asked %d times in 1s, want about 10", b)
	}
}

func TestFromResolvConf(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	write := func(s string) {
		if err := writeFile(path, s); err != nil {
			t.Fatal(err)
		}
	}
	write("# test\nnameserver 10.0.0.53\nnameserver 2001:db8::53\nsearch example.com\n")
	got, err := FromResolvConf(path)
	if err != nil || len(got) != 2 || got[0].String() != "10.0.0.53:53" || got[1].String() != "[2001:db8::53]:53" {
		t.Errorf("nameservers %v, %v", got, err)
	}
	write("search example.com\n")
	if _, err := FromResolvConf(path); err == nil || !strings.Contains(err.Error(), "names no nameserver") {
		t.Errorf("no nameserver: %v", err)
	}
	if _, err := FromResolvConf(path + ".missing"); err == nil || !strings.Contains(err.Error(), "resolvers: read "+path+".missing") {
		t.Errorf("a missing file: %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	good := Defaults()
	good.Nameservers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53")}
	for name, mut := range map[string]func(*Config){
		"no nameserver": func(c *Config) { c.Nameservers = nil },
		"timeout 0":     func(c *Config) { c.Timeout = 0 },
		"ttl range":     func(c *Config) { c.TTLMax = c.TTLMin / 2 },
		"port 0":        func(c *Config) { c.Nameservers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")} },
	} {
		c := good
		mut(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if r, err := New(good); err != nil {
		t.Errorf("defaults: %v", err)
	} else {
		r.Close()
	}
}
