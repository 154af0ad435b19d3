package session_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// startLogged starts cfg with access lines going to the returned buffer.
func startLogged(t *testing.T, cfg *session.Config) (netip.AddrPort, *testbed.LogBuffer) {
	cfg.Log.Access = true
	p, err := session.New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	var lines testbed.LogBuffer
	p.SetAccessLog(&lines)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(time.Second) })
	return p.Addrs("web")[0], &lines
}

// The documented line: client [time] frontend backend/server Tw/Tc/Tt
// bytes-read state actconn/feconn/beconn/srvconn/retries srv_queue/backend_queue.
// It is HAProxy's tcplog: this is Logstash's HAPROXYTCP pattern after its
// syslog header (IP, INT and NOTSPACE as grok defines them), anchored.
var accessLine = regexp.MustCompile(`^(127\.0\.0\.1:\d+) \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] web app/(\S+) ([+-]?\d+)/([+-]?\d+)/(\S+) (\S+) (\S+) (\d+)/(\d+)/(\d+)/(\d+)/(\S+) (\d+)/(\d+)$`)

// Submatches of accessLine.
const (
	lmServer = 2 + iota
	lmTw
	lmTc
	lmTt
	lmBytes
	lmState
	lmActconn
	lmFeconn
	lmBeconn
	lmSrvconn
	lmRetries
	lmSrvQueue
	lmBeQueue
)

func waitLine(t *testing.T, lines *testbed.LogBuffer) []string {
	t.Helper()
	testbed.WaitFor(t, 3*time.Second, func() bool { return strings.Count(lines.String(), "\n") >= 1 }, "an access line")
	line := strings.TrimSuffix(strings.SplitN(lines.String(), "\n", 2)[0], "\n")
	m := accessLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("access line %q does not match the documented format", line)
	}
	return m
}

func TestAccessLogNormalClose(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		addr, lines := startLogged(t, testConfig(eng, testbed.StartEcho(t).Addr()))
		sendHelloOnce(t, addr)
		m := waitLine(t, lines)
		if m[lmServer] != "s1" || m[lmTw] != "0" || m[lmBytes] != "5" || m[lmState] != "--" || m[lmRetries] != "0" ||
			m[lmBeQueue] != "0" || m[lmSrvQueue] != "0" {
			t.Fatalf("normal close logged as %q", m[0])
		}
	})
}

func TestAccessLogClientTimeoutAndRefusedConnect(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg := testConfig(eng, testbed.StartEcho(t).Addr())
		cfg.Frontends[0].TimeoutClient = 200 * time.Millisecond
		addr, lines := startLogged(t, cfg)
		if _, err := testbed.DialExpectClose(addr, 3*time.Second); err != nil {
			t.Fatal(err)
		}
		if m := waitLine(t, lines); m[lmState] != "cD" {
			t.Fatalf("client timeout logged as %q", m[lmState])
		}

		cfg = testConfig(eng, testbed.DeadAddr(t))
		addr, lines = startLogged(t, cfg)
		if _, err := testbed.DialExpectClose(addr, 3*time.Second); err != nil {
			t.Fatal(err)
		}
		if m := waitLine(t, lines); m[lmState] != "SC" || m[lmTc] != "-1" || m[lmRetries] != "3" {
			t.Fatalf("refused connect logged as state %q, Tc %s, retries %s", m[lmState], m[lmTc], m[lmRetries])
		}
	})
}

// A writer that never returns must not block whoever logs: lines beyond
// the queue are dropped and counted.
func TestLogSinkNeverBlocks(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	sink := session.NewLogSink(blockingWriter(stuck), 8)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			sink.Write([]byte("a line\n"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Write blocked on a stuck writer")
	}
	if d := sink.Dropped(); d < 90 {
		t.Fatalf("%d of 100 lines dropped with room for 8 (+1 in the writer)", d)
	}
}

type blockingWriter chan struct{}

func (b blockingWriter) Write(p []byte) (int, error) {
	<-b
	return len(p), nil
}

// A client that resets while it waits in the accept backlog has no peer
// address by the time it is accepted: its line still has every field,
// with "-:-" for the address as HAProxy writes it, so that no column
// shifts.
func TestAccessLogUnknownPeer(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg := testConfig(eng, testbed.StartEcho(t).Addr())
		cfg.Global.Workers = 1
		cfg.Frontends[0].MaxConn = 1
		addr, lines := startLogged(t, cfg)
		holder, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(holder, "x") // its session holds the one slot
		holder.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := holder.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the listener has stopped accepting
		waiting, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		waiting.(*net.TCPConn).SetLinger(0)
		waiting.Close() // reset while in the backlog
		time.Sleep(50 * time.Millisecond)
		holder.Close()
		testbed.WaitFor(t, 3*time.Second, func() bool { return strings.Count(lines.String(), "\n") >= 2 }, "two access lines")
		for _, line := range strings.Split(strings.TrimSuffix(lines.String(), "\n"), "\n") {
			f := strings.Fields(line)
			if len(f) != 9 || !regexp.MustCompile(`^(127\.0\.0\.1:\d+|-:-)$`).MatchString(f[0]) {
				t.Errorf("access line %q: want 9 fields, the first an address or -:-", line)
			}
		}
		if !strings.HasPrefix(strings.Split(lines.String(), "\n")[1], "-:- [") {
			t.Errorf("the reset client's line %q does not start with -:-", strings.Split(lines.String(), "\n")[1])
		}
	})
}

// With format = "json" each line is one object with stable keys, the
// values of the tcplog fields.
func TestAccessLogJSON(t *testing.T) {
	cfg := testConfig("uring", testbed.StartEcho(t).Addr())
	cfg.Log.Format = "json"
	addr, lines := startLogged(t, cfg)
	sendHelloOnce(t, addr)
	testbed.WaitFor(t, 3*time.Second, func() bool { return strings.Count(lines.String(), "\n") >= 1 }, "an access line")
	line := strings.SplitN(lines.String(), "\n", 2)[0]
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	want := map[string]any{"client_ip": "127.0.0.1", "frontend_name": "web", "backend_name": "app", "server_name": "s1",
		"time_queue": 0.0, "bytes_read": 5.0, "bytes_uploaded": 5.0, "termination_state": "--", "retries": 0.0,
		"srv_queue": 0.0, "backend_queue": 0.0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, got[k], v, line)
		}
	}
	keys := []string{"client_port", "accept_date", "time_backend_connect", "time_duration", "actconn", "feconn", "beconn", "srvconn"}
	for _, k := range keys {
		if _, ok := got[k]; !ok {
			t.Errorf("no %s in %s", k, line)
		}
	}
	if len(got) != len(want)+len(keys) {
		t.Errorf("%d keys, want %d: %s", len(got), len(want)+len(keys), line)
	}
}

// sendHelloOnce sends "hello" through addr, half-closes and reads the
// echo to its end: one clean session, one access line.
func sendHelloOnce(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "hello")
	c.(*net.TCPConn).CloseWrite()
	io.ReadAll(c)
	c.Close()
}
