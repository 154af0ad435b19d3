package main

import (
	"bufio"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ringproxy/cmd/ringproxy/config"
	"ringproxy/session"
	"ringproxy/session/admin"
	"ringproxy/session/testbed"
)

// controlConfig is a config with an admin socket at sock and the stats
// listener on stats, over one echo server and no health checks (a check
// would want fds while a test has none to spare).
func controlConfig(t *testing.T, sock string, stats netip.AddrPort) *session.Config {
	t.Helper()
	echo := testbed.StartEcho(t)
	toml := reloadTOML(sock, freePort(t), netip.AddrPort{}, echo.Addr())
	toml = strings.Replace(toml, "[admin]\n", "[admin]\nstats = \""+stats.String()+"\"\n", 1)
	cfg, err := config.Parse("control.toml", []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// serveLogged runs serve(cfg) with its log going to logs until the test
// ends.
func serveLogged(t *testing.T, cfg *session.Config, logs io.Writer) {
	t.Helper()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- serve(cfg, nil, slog.New(slog.NewTextHandler(logs, nil)), func(*session.Proxy) { close(started) })
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

// metric is the value of the sample named with its labels in /metrics
// text, or -1.
func metric(body, sample string) int {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// getOn sends GET path on an open connection to the stats listener and
// returns the status and body.
func getOn(t *testing.T, c net.Conn, path string) (int, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: stats\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatalf("send GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// The whole process through an fd flood (issue #14's reproduction): with
// the fd table full, the admin socket's and the stats listener's accepts
// fail with EMFILE; once fds are free both answer the clients that waited,
// each burst is logged at its start and end only (no line per retry, none
// from net/http), and show info and /metrics count the errors. The admin socket's loop ends
// only when it is closed, so no reload is needed to bring it back.
func TestControlListenersSurviveEMFILE(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	statsAddr := freePort(t)
	logs := &testbed.LogBuffer{}
	defer stdlog.SetOutput(stdlog.Writer())
	stdlog.SetOutput(logs) // where net/http logs by default
	serveLogged(t, controlConfig(t, sock, statsAddr), logs)

	adminClient, statsClient := testbed.PresocketUnix(t, sock), testbed.PresocketTCP(t, statsAddr)
	http.DefaultTransport.(*http.Transport).CloseIdleConnections() // earlier tests' fds, not to close under our feet
	release := testbed.ExhaustFDs(t, 0)
	for _, c := range []*testbed.Presocket{adminClient, statsClient} {
		if err := c.Connect(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // several backoffs of both; nothing can be asked without an fd
	release()
	adminConn, statsConn := presocketConn(t, adminClient), presocketConn(t, statsClient)

	adminConn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(adminConn, "show info human\n")
	adminConn.(*net.UnixConn).CloseWrite()
	info, err := io.ReadAll(adminConn)
	if err != nil || !strings.Contains(string(info), "engine: ") {
		t.Errorf("show info from the client that waited through EMFILE: %q, %v", info, err)
	} else if !regexp.MustCompile(`(?m)^admin_accept_errors: [1-9]`).Match(info) ||
		!regexp.MustCompile(`(?m)^stats_accept_errors: [1-9]`).Match(info) {
		t.Errorf("show info does not count the accept errors of both listeners:\n%s", info)
	}
	if status, _ := getOn(t, statsConn, "/metrics"); status != http.StatusOK {
		t.Errorf("/metrics from the client that waited through EMFILE: status %d", status)
	}
	// Fresh clients: a success that ends any burst still going on (an fd
	// some other goroutine freed meanwhile can split one burst in two).
	if out, err := admin.Send(sock, "show info"); err != nil || !strings.Contains(out, "Name: ringproxy\n") {
		t.Errorf("a fresh show info after the burst: %q, %v", out, err)
	}
	body := httpGet(t, "http://"+statsAddr.String()+"/metrics")
	for _, l := range []struct{ label, name string }{{"admin", "admin socket"}, {"stats", "stats listener"}} {
		errs := metric(body, `ringproxy_control_accept_errors_total{listener="`+l.label+`"}`)
		warns := logs.Count("level=WARN", l.name+": accept failed")
		recoveries := logs.Count("level=INFO", l.name+" accepting again after")
		if errs < 3 {
			t.Errorf("ringproxy_control_accept_errors_total{listener=%q} = %d, want the 500 ms burst's retries counted", l.label, errs)
		}
		if warns < 1 || warns != recoveries || warns >= errs || logs.Count("level=WARN", l.name, "too many open files") < 1 {
			t.Errorf("%s: %d accept errors, %d warnings, %d lines saying it accepts again; want a warning naming EMFILE and a recovery line per burst, not a line per error:\n%s",
				l.name, errs, warns, recoveries, logs)
		}
	}
	if n := logs.Count("Accept error"); n != 0 {
		t.Errorf("net/http logged %d accept errors of its own", n)
	}
}

// httpGet returns the body of a 200 answer to GET url.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}

// presocketConn is p as a net.Conn, closed when the test ends.
func presocketConn(t *testing.T, p *testbed.Presocket) net.Conn {
	t.Helper()
	c, err := p.Conn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Past statsMaxConns connections the stats listener answers 503 and
// closes at once, and counts it; the connections it holds are its to
// time out.
func TestStatsConnectionLimit(t *testing.T) {
	statsAddr := freePort(t)
	serveLogged(t, controlConfig(t, "", statsAddr), io.Discard)
	const extra = 5
	var conns []net.Conn
	for range statsMaxConns + extra {
		c, err := net.Dial("tcp", statsAddr.String())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	var refused sync.WaitGroup
	var mu sync.Mutex
	n503 := 0
	for _, c := range conns {
		refused.Go(func() {
			c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
			b, _ := io.ReadAll(c)
			if strings.HasPrefix(string(b), "HTTP/1.1 503 ") {
				mu.Lock()
				n503++
				mu.Unlock()
			}
		})
	}
	refused.Wait()
	if n503 != extra {
		t.Errorf("%d of %d connections answered 503, want the %d over the limit of %d", n503, len(conns), extra, statsMaxConns)
	}
	for _, c := range conns {
		c.Close()
	}
	// The server frees a slot when it sees its client's close, so the
	// first tries may still be refused: they count too. A raw request,
	// because net/http's client retries a refused one unseen.
	var body string
	tries := 0
	testbed.WaitFor(t, 3*time.Second, func() bool {
		tries++
		c, err := net.Dial("tcp", statsAddr.String())
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(c, "GET /metrics HTTP/1.0\r\n\r\n")
		b, _ := io.ReadAll(c)
		body = string(b)
		return strings.HasPrefix(body, "HTTP/1.0 200 ")
	}, "the stats listener to serve once the clients left")
	if n := metric(body, `ringproxy_control_refused_total{listener="stats"}`); n < extra || n > extra+tries-1 {
		t.Errorf(`ringproxy_control_refused_total{listener="stats"} = %d, want %d (+ up to %d tries refused while the slots freed)`, n, extra, tries-1)
	}
}
