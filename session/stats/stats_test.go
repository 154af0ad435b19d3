package stats

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"ringproxy/session"
	"ringproxy/session/ctlnet"
	"ringproxy/session/testbed"
)

func startProxy(t *testing.T, backend netip.AddrPort) *session.Proxy {
	be := &session.Backend{Name: "app", Balance: "roundrobin", TimeoutConnect: time.Second,
		TimeoutServer: 10 * time.Second, Retries: 1,
		Servers: []*session.Server{{Name: "app1", Address: backend, Weight: 100}}}
	fe := &session.Frontend{Name: "web", Binds: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		BackendName: "app", Backend: be, TimeoutClient: 10 * time.Second, TCPNoDelay: true}
	cfg := &session.Config{Global: session.Global{Engine: "uring", Workers: 2, MaxConn: 100, MaxAccept: 16,
		BufSize: 16 << 10, Grace: time.Second}, Frontends: []*session.Frontend{fe}, Backends: []*session.Backend{be}}
	p, err := session.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(time.Second) })
	return p
}

func scrape(t *testing.T, srv *httptest.Server) map[string]*dto.MetricFamily {
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range f.Metric {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	t.Fatalf("no %s sample with labels %v", name, want)
	return 0
}

// The counters /metrics shows equal the traffic the test sent.
func TestMetricsCountTheTraffic(t *testing.T) {
	echo := testbed.StartEcho(t)
	p := startProxy(t, echo.Addr())
	srv := httptest.NewServer(Handler(p))
	defer srv.Close()
	const sessions, size = 5, 100_000
	for i := 0; i < sessions; i++ {
		if _, err := testbed.IntegrityRun(context.Background(), p.Addrs("web")[0], size, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	testbed.WaitFor(t, 2*time.Second, func() bool { return p.Stats().CurConns == 0 }, "sessions to end")
	fams := scrape(t, srv)
	web := map[string]string{"frontend": "web"}
	app1 := map[string]string{"backend": "app", "server": "app1"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ringproxy_frontend_sessions_total", web, sessions},
		{"ringproxy_frontend_bytes_in_total", web, sessions * size},
		{"ringproxy_frontend_bytes_out_total", web, sessions * size},
		{"ringproxy_frontend_sessions_ended_total", map[string]string{"frontend": "web", "reason": "done"}, sessions},
		{"ringproxy_server_sessions_total", app1, sessions},
		{"ringproxy_server_bytes_in_total", app1, sessions * size},
		{"ringproxy_server_up", app1, 1},
		{"ringproxy_sessions_current", nil, 0},
		{"ringproxy_accept_total", map[string]string{"outcome": "ok"}, sessions},
	}
	var started float64
	for _, w := range []string{"0", "1"} {
		started += value(t, fams, "ringproxy_worker_sessions_total", map[string]string{"worker": w})
		if value(t, fams, "ringproxy_worker_completions_total", map[string]string{"worker": w}) <= 0 && started > 0 {
			t.Errorf("worker %s started sessions but counted no completions", w)
		}
	}
	if started != sessions {
		t.Errorf("workers started %v sessions, want %d", started, sessions)
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestStatsJSON(t *testing.T) {
	echo := testbed.StartEcho(t)
	p := startProxy(t, echo.Addr())
	srv := httptest.NewServer(Handler(p))
	defer srv.Close()
	if _, err := testbed.IntegrityRun(context.Background(), p.Addrs("web")[0], 1000, 1); err != nil {
		t.Fatal(err)
	}
	testbed.WaitFor(t, 2*time.Second, func() bool { return p.Stats().CurConns == 0 }, "the session to end")
	resp, err := http.Get(srv.URL + "/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap session.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatalf("decode /stats.json: %v", err)
	}
	if snap.Process.Accepted != 1 || len(snap.Frontends) != 1 || snap.Frontends[0].BytesIn != 1000 ||
		snap.Backends[0].Servers[0].Sessions != 1 || !snap.Backends[0].Servers[0].Up || snap.Process.Ended[session.ReasonDone] != 1 {
		t.Fatalf("stats.json: %+v", snap)
	}
}

// controlSource is a fakeSource whose process also has control
// listeners to count.
type controlSource struct {
	fakeSource
	listeners map[string]ctlnet.Counts
}

func (c controlSource) ControlListeners() map[string]ctlnet.Counts { return c.listeners }

// A Source that counts its control listeners has them in /metrics, one
// sample per listener; one that does not has none.
func TestMetricsControlListeners(t *testing.T) {
	src := controlSource{fakeSource{fakeSnapshot()}, map[string]ctlnet.Counts{
		"admin": {Open: 2, AcceptErrors: 150, Refused: 7},
		"stats": {Open: 1, AcceptErrors: 3},
	}}
	srv := httptest.NewServer(Handler(src))
	defer srv.Close()
	fams := scrape(t, srv)
	admin, stats := map[string]string{"listener": "admin"}, map[string]string{"listener": "stats"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ringproxy_control_connections_current", admin, 2},
		{"ringproxy_control_accept_errors_total", admin, 150},
		{"ringproxy_control_refused_total", admin, 7},
		{"ringproxy_control_accept_errors_total", stats, 3},
		{"ringproxy_control_refused_total", stats, 0},
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	plain := httptest.NewServer(Handler(fakeSource{fakeSnapshot()}))
	defer plain.Close()
	if _, ok := scrape(t, plain)["ringproxy_control_accept_errors_total"]; ok {
		t.Error("a Source without control listeners has control metrics")
	}
}

type stateSource struct {
	fakeSource
	on bool
}

func (s stateSource) StateFile() (uint64, uint64, bool) { return 12, 3, s.on }

// A Source keeping a state file has its writes and failed writes in
// /metrics; one whose state file is off has neither.
func TestMetricsStateFile(t *testing.T) {
	srv := httptest.NewServer(Handler(stateSource{fakeSource{fakeSnapshot()}, true}))
	defer srv.Close()
	fams := scrape(t, srv)
	if got := value(t, fams, "ringproxy_state_file_writes_total", nil); got != 12 {
		t.Errorf("writes %v, want 12", got)
	}
	if got := value(t, fams, "ringproxy_state_file_write_failures_total", nil); got != 3 {
		t.Errorf("failures %v, want 3", got)
	}
	off := httptest.NewServer(Handler(stateSource{fakeSource{fakeSnapshot()}, false}))
	defer off.Close()
	if _, ok := scrape(t, off)["ringproxy_state_file_writes_total"]; ok {
		t.Error("a Source without a state file has state file metrics")
	}
}
