package health

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// probeOnce runs one check of spec against addr and times it.
func probeOnce(t *testing.T, spec Spec, addr netip.AddrPort) (error, time.Duration) {
	t.Helper()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err := newProber(spec, addr).check(context.Background())
	return err, time.Since(t0)
}

var (
	tcpSpec  = Spec{Kind: TCP, Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond, Rise: 2, Fall: 2}
	httpSpec = Spec{Kind: HTTP, Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond, Rise: 2, Fall: 2,
		Path: "/healthz", ExpectStatus: 200}
	redisSpec = Spec{Kind: Expect, Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond, Rise: 2, Fall: 2,
		Send: []byte("PING\r\n"), Expect: []byte("+PONG")}
)

// reply answers every line read with answer, like a Redis server.
func reply(answer string) func(net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	}
}

// writeThenHold writes out once, then keeps the connection open.
func writeThenHold(out string) func(net.Conn) {
	return func(c net.Conn) {
		io.WriteString(c, out)
		silent(c)
	}
}

func TestTCPProbe(t *testing.T) {
	t.Parallel()
	srv := serve(t, hangUp)
	if err, _ := probeOnce(t, tcpSpec, srv.addr); err != nil {
		t.Errorf("listener: %v", err)
	}
	srv.Close()
	err, _ := probeOnce(t, tcpSpec, srv.addr)
	if err == nil || err.Error() != "connect: connection refused" {
		t.Errorf("closed port: %v, want connect: connection refused", err)
	}
}

func TestTCPProbeBlackholeTimesOut(t *testing.T) {
	t.Parallel()
	err, took := probeOnce(t, tcpSpec, blackhole(t))
	if err == nil || err.Error() != "connect: timeout after 300ms" {
		t.Errorf("blackhole: %v, want connect: timeout after 300ms", err)
	}
	if took < tcpSpec.Timeout-10*time.Millisecond || took > tcpSpec.Timeout+200*time.Millisecond {
		t.Errorf("blackhole: failed after %v, want ~%v", took, tcpSpec.Timeout)
	}
}

func TestHTTPProbe(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		hosts []string
		paths []string
	)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts, paths = append(hosts, r.Host), append(paths, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/down" {
			w.WriteHeader(503)
		}
	}))
	t.Cleanup(hs.Close)
	addr := netip.MustParseAddrPort(hs.Listener.Addr().String())

	if err, _ := probeOnce(t, httpSpec, addr); err != nil {
		t.Errorf("200: %v", err)
	}
	spec := httpSpec
	spec.Host = "health.example"
	spec.Path = "/down"
	if err, _ := probeOnce(t, spec, addr); err == nil || err.Error() != "http status 503, want 200" {
		t.Errorf("503: %v, want http status 503, want 200", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{addr.String(), "health.example"}; strings.Join(hosts, " ") != strings.Join(want, " ") {
		t.Errorf("Host headers seen %q, want %q (default: the server's address)", hosts, want)
	}
	if want := []string{"/healthz", "/down"}; strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("paths seen %q, want %q", paths, want)
	}
}

func TestHTTPProbeResponses(t *testing.T) {
	t.Parallel()
	endless := func(c net.Conn) { // headers, then a body that never ends
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
		for {
			if _, err := io.WriteString(c, strings.Repeat("x", 4096)); err != nil {
				return
			}
		}
	}
	for _, tc := range []struct {
		name   string
		handle func(net.Conn)
		want   string // "" = success
	}{
		{"bare LF headers", writeThenHold("HTTP/1.0 200 OK\nServer: x\n\n"), ""},
		{"no headers at all", writeThenHold("HTTP/1.1 200 OK\r\n\r\n"), ""},
		{"endless body is not read", endless, ""},
		{"garbage", writeThenHold("garbage\r\n\r\n"), `http: response is not HTTP: "garbage\r\n\r\n"`},
		{"garbage without newline", writeThenHold("SSH-2.0"), `http: response is not HTTP: "SSH-2.0"`},
		{"bad status line", writeThenHold("HTTP/1.1 2000 OK\r\n\r\n"), `http: bad status line "HTTP/1.1 2000 OK\r"`},
		{"wrong status before headers end", writeThenHold("HTTP/1.1 404 Not Found\r\n"), "http status 404, want 200"},
		{"closed mid-headers", func(c net.Conn) {
			c.Read(make([]byte, 512))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nServer: x\r\n")
			c.Close()
		},
			"read headers: connection closed by server"},
		{"closed before answering", func(c net.Conn) { c.Read(make([]byte, 512)); c.Close() },
			"read status line: connection closed by server"},
		{"headers never end", writeThenHold("HTTP/1.1 200 OK\r\nServer: x\r\n"), "read headers: timeout after 300ms"},
		{"headers too long", writeThenHold("HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", MaxRead)), "http: status line and headers exceed 16384 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, tc.handle)
			err, took := probeOnce(t, httpSpec, srv.addr)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			if !strings.Contains(tc.want, "timeout") && took > 200*time.Millisecond {
				t.Errorf("took %v: should not wait for the timeout", took)
			}
		})
	}
}

func TestExpectProbe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		handle func(net.Conn)
		want   string
	}{
		{"pong", reply("+PONG\r\n"), ""},
		{"pong in pieces", func(c net.Conn) {
			c.Read(make([]byte, 64))
			for _, p := range []string{"+P", "ON", "G\r\n"} {
				io.WriteString(c, p)
				time.Sleep(10 * time.Millisecond)
			}
			silent(c)
		}, ""},
		{"error reply", reply("-ERR unknown command\r\n"),
			`read: timeout after 300ms, got "-ERR unknown command\r\n", want "+PONG"`},
		{"error then close", func(c net.Conn) { c.Read(make([]byte, 64)); io.WriteString(c, "-ERR\r\n"); c.Close() },
			`read: connection closed by server, got "-ERR\r\n", want "+PONG"`},
		{"silent", silent, `read: timeout after 300ms, got "", want "+PONG"`},
		{"flood", writeThenHold(strings.Repeat("-", MaxRead)),
			`expect: no match in the first 16384 bytes, got "` + strings.Repeat("-", 64) + `"..., want "+PONG"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, tc.handle)
			err, took := probeOnce(t, redisSpec, srv.addr)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(tc.want, "timeout") && (took < redisSpec.Timeout-10*time.Millisecond || took > redisSpec.Timeout+200*time.Millisecond) {
				t.Errorf("failed after %v, want ~%v", took, redisSpec.Timeout)
			}
		})
	}
}

// The timeout covers the whole check, not each read: a server trickling a
// byte at a time cannot stretch it.
func TestProbeTimeoutIsWholeCheck(t *testing.T) {
	t.Parallel()
	trickle := func(c net.Conn) {
		c.Read(make([]byte, 64))
		for {
			if _, err := io.WriteString(c, "."); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, spec := range []Spec{httpSpec, redisSpec} {
		srv := serve(t, func(c net.Conn) {
			if spec.Kind == HTTP {
				io.WriteString(c, "HTTP/1.1 200 OK\r\n")
			}
			trickle(c)
		})
		err, took := probeOnce(t, spec, srv.addr)
		if err == nil || !strings.Contains(err.Error(), "timeout after 300ms") {
			t.Errorf("%s: %v, want a timeout", spec.Kind, err)
		}
		if took > spec.Timeout+200*time.Millisecond {
			t.Errorf("%s: failed after %v, want ~%v", spec.Kind, took, spec.Timeout)
		}
	}
}

func TestProbeStopsOnCancel(t *testing.T) {
	t.Parallel()
	srv := serve(t, silent)
	spec := redisSpec
	spec.Timeout = time.Hour
	for _, addr := range []netip.AddrPort{srv.addr, blackhole(t)} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		t0 := time.Now()
		err := newProber(spec, addr).check(ctx)
		if err != errStopped || time.Since(t0) > 500*time.Millisecond {
			t.Errorf("%v: %v after %v, want %v soon after 100ms", addr, err, time.Since(t0), errStopped)
		}
	}
}
