package session_test

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"ringproxy/ring"
	"ringproxy/session"
	"ringproxy/session/testbed"
)

// testConfig is a one-frontend, one-backend config on 127.0.0.1:0 with
// short timeouts; tests adjust it before start.
func testConfig(engine string, servers ...netip.AddrPort) *session.Config {
	be := &session.Backend{
		Name: "app", Balance: "roundrobin",
		TimeoutConnect: 2 * time.Second, TimeoutServer: 30 * time.Second,
		Retries: 3, Redispatch: true,
	}
	for i, a := range servers {
		be.Servers = append(be.Servers, &session.Server{Name: "s" + string(rune('1'+i)), Address: a, Weight: 100})
	}
	fe := &session.Frontend{
		Name: "web", Binds: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		BackendName: "app", Backend: be, TimeoutClient: 30 * time.Second, TCPNoDelay: true,
	}
	return &session.Config{
		Global: session.Global{Engine: engine, Workers: 2, MaxConn: 20000, MaxAccept: 64,
			BufSize: 16 << 10, Grace: time.Second, Splice: true},
		Log:       session.Log{Level: "info"},
		Frontends: []*session.Frontend{fe},
		Backends:  []*session.Backend{be},
	}
}

// forEngines runs f as a subtest per engine: every behaviour holds on both.
func forEngines(t *testing.T, f func(t *testing.T, eng string)) {
	for _, eng := range ring.Engines {
		t.Run(eng, func(t *testing.T) { f(t, eng) })
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startProxy runs cfg and returns the frontend's address.
func startProxy(t *testing.T, cfg *session.Config) (*session.Proxy, netip.AddrPort) {
	t.Helper()
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	p, err := session.New(cfg, log)
	if err != nil {
		t.Fatalf("new proxy: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(func() { p.Shutdown(time.Second) })
	return p, p.Addrs("web")[0]
}

func TestIntegrityThroughProxy(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		p, addr := startProxy(t, testConfig(eng, echo.Addr()))
		size := 8 << 20
		if testing.Short() {
			size = 1 << 20
		}
		total, elapsed := testbed.IntegrityMany(t, addr, 50, size)
		t.Logf("50 conns x %d MiB both ways: %.0f MB/s", size>>20, float64(2*total)/elapsed.Seconds()/1e6)
		// A client reads the proxy's FIN before the session that sent it
		// has ended: the count catches up.
		testbed.WaitFor(t, 5*time.Second, func() bool { return p.Stats().CurConns == 0 }, "sessions to end")
		st := p.Stats()
		if st.Accepted != 50 || st.Ended[session.ReasonDone] != 50 {
			t.Errorf("accepted %d, ended cleanly %d; want 50 and 50 (%+v)", st.Accepted, st.Ended[session.ReasonDone], st.Counters)
		}
	})
}
