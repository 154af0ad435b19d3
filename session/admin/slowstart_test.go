package admin

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// slowProxy is testdata/haproxy-2.6.12-slowstart.cfg in ringproxy's
// terms: a, and b with maxconn 20 and a 10s slow start; it returns the
// proxy and its admin socket's path.
func slowProxy(t *testing.T) (*session.Proxy, string) {
	var servers []*session.Server
	for _, n := range []string{"a", "b"} {
		servers = append(servers, &session.Server{Name: n, Address: testbed.StartNamed(t, n).Addr(), Weight: 100})
	}
	servers[1].MaxConn, servers[1].SlowStart = 20, 10*time.Second
	be := &session.Backend{Name: "app", Balance: "roundrobin", TimeoutConnect: time.Second,
		TimeoutServer: 10 * time.Second, Retries: 1, Servers: servers}
	fe := &session.Frontend{Name: "web", Binds: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		BackendName: "app", Backend: be, TimeoutClient: 10 * time.Second, TCPNoDelay: true}
	cfg := &session.Config{Global: session.Global{Engine: "uring", Workers: 2, MaxConn: 100, MaxAccept: 16,
		BufSize: 16 << 10, Grace: time.Second}, Frontends: []*session.Frontend{fe}, Backends: []*session.Backend{be}}
	p := startProxy(t, cfg)
	_, path := listen(t, p, nil)
	return p, path
}

func statInt(t *testing.T, row map[string]string, f string) int {
	t.Helper()
	n, err := strconv.Atoi(row[f])
	if err != nil {
		t.Fatalf("%s/%s: %s = %q, not a number", row["pxname"], row["svname"], f, row[f])
	}
	return n
}

// A server warming up, as HAProxy 2.6.12 shows it (testdata): show stat
// gives its effective weight in weight, its own in uweight, the ramp's
// percent in throttle, and the backend sums both; show servers state
// says op state 1 (starting) with its own weight in srv_uweight; get
// weight answers its own weight, set weight changes it and the ramp
// goes on. Drained, throttle is left empty.
func TestSlowStartAsHAProxy(t *testing.T) {
	_, hrows := parseStat(t, haproxyFile(t, "testdata/haproxy-2.6.12-slowstart-show-stat.csv"))
	ha, hb, hbe := byName(t, hrows, "app", "a"), byName(t, hrows, "app", "b"), byName(t, hrows, "app", "BACKEND")
	if ha["throttle"] != "" || hb["throttle"] == "" || statInt(t, hb, "weight") >= statInt(t, hb, "uweight") ||
		statInt(t, hbe, "weight") != statInt(t, ha, "weight")+statInt(t, hb, "weight") || statInt(t, hbe, "uweight") != 200 {
		t.Fatalf("the capture is not what this test reads it as: a %v, b %v, backend %v", ha, hb, hbe)
	}

	_, path := slowProxy(t)
	if got := stateLine(t, path, "b"); got[5] != "2" {
		t.Fatalf("at start b's srv_op_state is %s, want 2: no slow start at start", got[5])
	}
	ctl(t, path, "disable server app/b")
	ctl(t, path, "enable server app/b")
	_, rows := parseStat(t, ctl(t, path, "show stat"))
	a, b, be := byName(t, rows, "app", "a"), byName(t, rows, "app", "b"), byName(t, rows, "app", "BACKEND")
	if a["throttle"] != "" {
		t.Errorf("a, at full weight, has throttle %q; want it empty, as HAProxy", a["throttle"])
	}
	w, uw, th := statInt(t, b, "weight"), statInt(t, b, "uweight"), statInt(t, b, "throttle")
	if uw != 100 || w < 1 || w > 20 || th < 1 || th > 20 {
		t.Errorf("b just enabled: weight %d, uweight %d, throttle %d; want weight and throttle near 1/16, uweight 100", w, uw, th)
	}
	if bw, buw := statInt(t, be, "weight"), statInt(t, be, "uweight"); bw != 100+w || buw != 200 {
		t.Errorf("backend weight %d, uweight %d; want %d (effective) and 200", bw, buw, 100+w)
	}
	if b["slim"] != "20" {
		t.Errorf("b's slim %q during the ramp, want its maxconn 20, as HAProxy", b["slim"])
	}
	st := stateLine(t, path, "b")
	if st[5] != "1" || st[7] != "100" || st[8] != "100" {
		t.Errorf("show servers state during the ramp: op %s, uweight %s, iweight %s; want 1, 100, 100", st[5], st[7], st[8])
	}
	if got := ctl(t, path, "get weight app/b"); got != "100 (initial 100)\n" {
		t.Errorf("get weight during the ramp: %q, want the weight set, as HAProxy", got)
	}

	ctl(t, path, "set weight app/b 50")
	if got := ctl(t, path, "get weight app/b"); got != "50 (initial 100)\n" {
		t.Errorf("get weight after set weight 50: %q", got)
	}
	_, rows = parseStat(t, ctl(t, path, "show stat"))
	b = byName(t, rows, "app", "b")
	if statInt(t, b, "uweight") != 50 || statInt(t, b, "weight") >= 50 || b["throttle"] == "" {
		t.Errorf("set weight 50 mid-ramp: weight %s, uweight %s, throttle %q; want the ramp going on to 50", b["weight"], b["uweight"], b["throttle"])
	}
	if st := stateLine(t, path, "b"); st[5] != "1" || st[7] != "50" {
		t.Errorf("show servers state after set weight 50: op %s, uweight %s; want 1, 50", st[5], st[7])
	}

	ctl(t, path, "set server app/b state drain")
	_, rows = parseStat(t, ctl(t, path, "show stat"))
	if b = byName(t, rows, "app", "b"); b["throttle"] != "" {
		t.Errorf("drained mid-ramp: throttle %q, want it empty, as HAProxy", b["throttle"])
	}
}
