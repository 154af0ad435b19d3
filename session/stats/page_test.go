package stats

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ringproxy/session"
)

// fakeSource always returns the same snapshot.
type fakeSource struct{ snap session.Snapshot }

func (f fakeSource) Snapshot() session.Snapshot { return f.snap }

const evilError = `connect: <script>alert("x")</script> refused`

func fakeSnapshot() session.Snapshot {
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	return session.Snapshot{
		Time:   now,
		Uptime: 3*86400 + 4*3600 + 5*60 + 9,
		Process: session.ProcessStats{Engine: "uring", Workers: 4, MaxConn: 20000,
			SessionRate: session.Rate{Cur: 41.5, Max: 870}, ConnRate: session.Rate{Cur: 42, Max: 901}, Stats: session.Stats{
				CurConns: 137, MaxConns: 1843, CurQueue: 3, ServerTransitions: 6, LogDropped: 19,
				Counters: session.Counters{
					Accepted: 1234567,
					AcceptOutcomes: [...]uint64{session.AcceptOK: 1234567, session.AcceptMaxSock: 8, session.AcceptSockOpt: 9,
						session.AcceptOverflow: 2, session.AcceptStopping: 0, session.AcceptDenied: 41, session.AcceptSourceRate: 7, session.AcceptDisabled: 4},
					AcceptErrors: 1,
					Paused: [...]uint64{session.LimitGlobal: 3, session.LimitFrontend: 12, session.LimitArena: 13,
						session.LimitSystem: 14, session.LimitRate: 5},
					Ended: [...]uint64{session.ReasonDone: 1230000, session.ReasonClientTimeout: 3120, session.ReasonServerTimeout: 877,
						session.ReasonConnectFailed: 412, session.ReasonClientError: 31, session.ReasonServerError: 32,
						session.ReasonKilled: 33, session.ReasonQueueTimeout: 34, session.ReasonNoServer: 21,
						session.ReasonBadProxy: 35, session.ReasonDenied: 36, session.ReasonNoRoute: 37, session.ReasonBadHello: 38, session.ReasonServerDown: 39, session.ReasonServerUp: 40},
					ConnAttempts: 1235000, ConnFailures: 433, ConnTimeouts: 12, Retries: 389, Redispatches: 77,
					Queued: 5123, QueueWaitNs: 42_500_000_000, BufWaits: 51, SocketBackoffs: 52, HandedOver: 53, Spliced: 54, SpliceFailures: 55,
					ProxyErrors: [...]uint64{session.ProxyNotProxy: 4, session.ProxyBadV1: 1, session.ProxyBadV2: 61,
						session.ProxyTooLong: 62, session.ProxyUnsupportedFamily: 63, session.ProxyTimeout: 2, session.ProxyClosed: 64},
					Inspected: [...]uint64{session.InspectTLS: 71, session.InspectHTTP: 72, session.InspectSSH: 73, session.InspectNone: 74,
						session.InspectOther: 75, session.InspectBadHello: 76, session.InspectTruncated: 77, session.InspectTooLarge: 78},
					Late: 56, BytesIn: 98 << 30, BytesOut: 1<<40 + 7<<38,
				},
			}},
		Frontends: []session.FrontendStats{
			{Name: "web-public", Binds: []string{"0.0.0.0:80", "[::]:80"}, Backend: "app", MaxConn: 10000,
				CurSessions: 120, MaxSessions: 1500, Sessions: 1200000, Refused: 48, BytesIn: 90 << 30, BytesOut: 1 << 40,
				SessionRate: session.Rate{Cur: 38.25, Max: 812}, ConnRate: session.Rate{Cur: 39, Max: 840}, RateLimit: 2000,
				Ended: map[string]uint64{"done": 1199000, "client-timeout": 900, "server-timeout": 60, "connect-failed": 12},
				Routes: []session.RouteStats{{Match: "sni a.example.com, *.b.example.com", Backend: "app", Hits: 1100000},
					{Match: "protocol ssh", Backend: "db", Hits: 0}, {Match: "default", Default: true, Hits: 99952}}},
			{Name: "db-internal", Binds: []string{"10.0.0.1:5432"}, Backend: "db", CurSessions: 17, MaxSessions: 343, Sessions: 34567,
				SessionRate: session.Rate{Cur: 3.5, Max: 58}, ConnRate: session.Rate{Cur: 3.5, Max: 58},
				BytesIn: 8 << 30, BytesOut: 7 << 38, Ended: map[string]uint64{"done": 31000, "no-server": 21}},
		},
		Backends: []session.BackendStats{
			{Name: "app", Balance: "roundrobin", CurQueue: 3, MaxQueue: 44, MaxSessions: 1210,
				SessionRate: session.Rate{Cur: 38.25, Max: 811}, LastChange: now.Add(-3*86400*time.Second - 4*3600*time.Second - 5*60*time.Second - 9*time.Second),
				LastSession: now, Servers: []session.ServerStats{
					{Name: "app-1", Addr: "10.0.1.11:8080", Up: true, Weight: 100, MaxConn: 500, CurSessions: 61, MaxSessions: 499,
						Sessions: 600100, ConnFailures: 2, Retries: 1, BytesIn: 45 << 30, BytesOut: 1 << 39,
						SessionRate: session.Rate{Cur: 19.5, Max: 406}, LastChange: now.Add(-4*time.Minute - 12*time.Second),
						Downtime: session.Seconds(75 * time.Second), LastSession: now,
						Check: &session.CheckStats{LastOK: true, LastCheck: now.Add(-2 * time.Second), LastDuration: 420 * time.Microsecond,
							Checks: 9000, CheckFailures: 3, Transitions: 2}},
					{Name: "app-2", Addr: "10.0.1.12:8080", Up: false, Weight: 100, MaxConn: 500, MaxSessions: 500, Sessions: 599000,
						ConnFailures: 411, Retries: 300, Redispatches: 77, BytesIn: 44 << 30, BytesOut: 1 << 39,
						SessionRate: session.Rate{Cur: 0, Max: 405}, LastChange: now.Add(-17 * time.Second),
						Downtime: session.Seconds(3*time.Hour + 17*time.Second), LastSession: now.Add(-20 * time.Second),
						Check: &session.CheckStats{LastOK: false, LastCheck: now.Add(-1 * time.Second), LastDuration: 1500 * time.Millisecond,
							LastError: evilError, Checks: 9000, CheckFailures: 57, Transitions: 3}},
					{Name: "app-drain", Addr: "10.0.1.13:8080", Up: true, Weight: 0, CurSessions: 1, MaxSessions: 9, Sessions: 900,
						BytesIn: 1 << 20, BytesOut: 3 << 21, SessionRate: session.Rate{Cur: 0, Max: 7}, LastChange: now.Add(-time.Hour),
						LastSession: now.Add(-time.Hour),
						Check:       &session.CheckStats{LastOK: true, LastCheck: now.Add(-3 * time.Second), LastDuration: 12 * time.Millisecond, Checks: 8000}},
					{Name: "app-spare", Addr: "10.0.2.10:8080", Up: true, Disabled: true, Weight: 50, Backup: true,
						LastChange: now.Add(-90 * time.Second), Downtime: session.Seconds(90 * time.Second)},
				}},
			{Name: "db", Balance: "leastconn", MaxSessions: 343, SessionRate: session.Rate{Cur: 3.5, Max: 58},
				LastChange: now.Add(-40 * time.Second), Downtime: session.Seconds(5 * time.Minute), DownTransitions: 2,
				Servers: []session.ServerStats{
					{Name: "db-primary", Addr: "10.0.3.1:5432", Up: true, Weight: 1, CurSessions: 17, MaxSessions: 343, Sessions: 34546,
						ConnFailures: 0, BytesIn: 8 << 30, BytesOut: 7 << 38, SessionRate: session.Rate{Cur: 3.5, Max: 58},
						LastChange: now.Add(-40 * time.Second), Downtime: session.Seconds(5 * time.Minute)},
					{Name: "db-replica", Addr: "10.0.3.2:5432", Up: false, Weight: 1, Sessions: 21, ConnFailures: 21,
						LastChange: now.Add(-3 * time.Hour), Downtime: session.Seconds(3 * time.Hour)},
				}},
			// UP but taken out by an operator: the backend has no server
			// that takes sessions.
			{Name: "cache", Balance: "first", LastChange: now.Add(-50 * time.Second), Downtime: session.Seconds(50 * time.Second), DownTransitions: 1,
				Servers: []session.ServerStats{{Name: "cache-1", Addr: "10.0.4.1:6379", Up: true, Disabled: true, Weight: 1,
					LastChange: now.Add(-50 * time.Second), Downtime: session.Seconds(50 * time.Second)}}},
		},
		Workers: []session.WorkerStats{
			{ID: 0, CPU: 2, Turns: 90001, Completions: 400001, Sessions: 600000},
			{ID: 1, CPU: 3, Turns: 90002, Completions: 400002, Sessions: 634567},
		},
	}
}

func TestStatsPage(t *testing.T) {
	src := fakeSource{fakeSnapshot()}
	srv := httptest.NewServer(Handler(src))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	page := string(body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, page)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("content type %q", ct)
	}
	var names []string
	for _, f := range src.snap.Frontends {
		names = append(names, f.Name)
	}
	for _, b := range src.snap.Backends {
		names = append(names, b.Name)
		for _, s := range b.Servers {
			names = append(names, s.Name, s.Addr)
		}
	}
	for _, n := range names {
		if !strings.Contains(page, n) {
			t.Errorf("page lacks %q", n)
		}
	}
	for _, want := range []string{
		`<span class="badge down">DOWN</span>`, `<span class="badge up">UP</span>`, `<span class="badge drain">DRAIN</span>`,
		`<span class="badge drain">MAINT</span>`, `<span class="tag">backup</span>`,
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		`href="/metrics"`, `href="/stats.json"`, `http-equiv="refresh"`,
		"uring", "3d 4h 05m", "137 / 1,843", "20,000", "2025-03-14 15:09:26 UTC",
		"1,200,000", "90.0 GiB", "1.8 TiB", "client-timeout <b>900</b>",
		"route 1</td>", "sni a.example.com, *.b.example.com", "route 2</td>", "protocol ssh", "default</td>", "1,100,000", "close (no-route)",
		// Peaks and rates computed by the proxy, a frontend's rate limit.
		"<b>42 / 870</b>", `<td class="n">1,500</td>`, `<td class="n l rate">38</td>`, `<td class="n rate">812</td>`, `<td class="n">2,000</td>`,
		`<td class="n l rate">3.5</td>`,
		// Servers: MAINT does not count as up; state age, downtime, retries,
		// redispatches, check duration.
		"servers up <b>2 / 4</b>", "servers up <b>1 / 2</b>", "servers up <b>0 / 1</b>",
		"for 4m 12s", `<td class="n l">1m 15s</td>`, `<td class="n l">3h 00m</td>`, `<td class="n">300</td>`, `<td class="n">77</td>`,
		"2s ago in 0.4 ms", "1s ago in 1500 ms", "3s ago in 12 ms", `title="last session 20s ago">599,000</td>`,
		// The app BACKEND row: UP, queue 3 of at most 44, 61 + 1 on its
		// servers and 3 queued, at most 1,210; its servers' sums.
		`<tr class="be up">`, `<td class="n l warn">3</td>`, `<td class="n">44</td>`, `<td class="n l" title="on its servers or queued for one">65</td>`,
		`<td class="n">1,210</td>`, `<td class="n l">413</td>`, `<td class="n">301</td>`, `title="DOWN 2 times">5m 00s</td>`,
		"last session just now", "no session yet",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, `<tr class="be `); n != 3 {
		t.Errorf("%d BACKEND rows, want 3", n)
	}
	// cache's only server is UP but in MAINT: its BACKEND is DOWN.
	if i := strings.Index(page, `id="be-cache"`); i < 0 || !strings.Contains(page[i:], `<tr class="be down">`) {
		t.Error("the cache BACKEND row is not DOWN")
	}
	if strings.Contains(page, `rate">–`) {
		t.Error("a rate shows – instead of a number")
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("check error text not escaped")
	}
	if n := strings.Count(page, `<tr class="srv `); n != 7 {
		t.Errorf("%d server rows, want 7", n)
	}
	// Only the page is at /: other paths stay 404.
	r2, err := http.Get(srv.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotFound {
		t.Errorf("/nope: status %d", r2.StatusCode)
	}
}

func TestStatsPageEmpty(t *testing.T) {
	srv := httptest.NewServer(Handler(fakeSource{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "no frontends") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}

func TestPageFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{num(0), "0"}, {num(999), "999"}, {num(1000), "1,000"}, {num(int64(-1234567)), "-1,234,567"},
		{num(uint64(18446744073709551615)), "18,446,744,073,709,551,615"},
		{humanBytes(0), "0 B"}, {humanBytes(1023), "1023 B"}, {humanBytes(1536), "1.5 KiB"},
		{humanBytes(200 << 20), "200 MiB"}, {humanBytes(1 << 40), "1.0 TiB"},
		{uptime(42), "42s"}, {uptime(312), "5m 12s"}, {uptime(7620), "2h 07m"}, {uptime(90000), "1d 1h 00m"},
		{ago(time.Unix(100, 0), time.Time{}), "never"}, {ago(time.Unix(100, 0), time.Unix(96, 0)), "4s ago"},
		{limit(0), "–"}, {limit(5000), "5,000"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// findChromium returns a headless-capable Chromium on PATH, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// runChromium runs one headless Chromium command against url and
// returns its stdout. The process group is killed on timeout.
func runChromium(ctx context.Context, t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("chromium %v: %v, err=%v", args[0], time.Since(start), err)
	if ctx.Err() != nil {
		t.Fatalf("chromium %v: timed out (%v); stderr:\n%s", args, ctx.Err(), stderr.String())
	}
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		t.Fatalf("chromium %v: %v; stderr:\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

var (
	beRow    = regexp.MustCompile(`<tr class="be (\w+)">\s*<td class="name">BACKEND</td>`)
	rateCell = regexp.MustCompile(`<td class="n[^"]* rate">([^<]*)</td>`)
)

// A real browser renders the page: the DOM holds the server rows, their
// state cells and each backend's BACKEND row, every rate is a number on
// the first load, and a screenshot is drawn.
// RINGPROXY_STATS_SCREENSHOT=path keeps the screenshot.
func TestStatsPageInChromium(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		t.Skip("no chromium, chromium-browser or google-chrome on PATH: skipping the browser test (apt-get install chromium)")
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	srv := httptest.NewServer(Handler(fakeSource{fakeSnapshot()}))
	defer srv.Close()
	url := srv.URL + "/"

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	dom := string(runChromium(ctx, t, bin, "--dump-dom", url))
	for _, want := range []string{
		`<tr class="srv up">`, `<tr class="srv down">`, `<tr class="srv drain">`, `<tr class="srv drain backup">`,
		`<span class="badge down">DOWN</span>`, `<span class="badge up">UP</span>`, `<span class="badge drain">MAINT</span>`,
		"app-1", "app-2", "app-drain", "app-spare", "db-primary", "db-replica", "web-public", "db-internal",
		`&lt;script&gt;alert("x")&lt;/script&gt;`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, `<script>alert`) {
		t.Error("check error text became a script element")
	}
	// A BACKEND row closes each backend's table, UP or DOWN by its servers.
	if rows := beRow.FindAllStringSubmatch(dom, -1); len(rows) != 3 || rows[0][1] != "up" || rows[1][1] != "up" || rows[2][1] != "down" {
		t.Errorf("BACKEND rows %q, want app and db up, cache down", rows)
	}
	// Every rate is a number on the first load: the proxy computed them.
	cells := rateCell.FindAllStringSubmatch(dom, -1)
	if len(cells) != 2*(2+7+3) {
		t.Errorf("%d rate cells, want a current and a max for 2 frontends, 7 servers and 3 backends", len(cells))
	}
	for _, c := range cells {
		if _, err := strconv.ParseFloat(strings.ReplaceAll(c[1], ",", ""), 64); err != nil {
			t.Errorf("rate cell %q is not a number", c[1])
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	shot := os.Getenv("RINGPROXY_STATS_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "stats.png")
	}
	runChromium(ctx, t, bin, "--screenshot="+shot, "--window-size=1400,900", url)
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if len(data) < 10<<10 {
		t.Errorf("screenshot is only %d bytes", len(data))
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 900 {
		t.Errorf("screenshot is %dx%d, want 1400x900", b.Dx(), b.Dy())
	}
	t.Logf("screenshot %s (%d bytes)", shot, len(data))
}
