package admin

import (
	"encoding/csv"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// What HAProxy 2.6.12 (Debian's 2.6.12-1+deb12u4) answered to show stat
// and show info, run with testdata/haproxy-2.6.12.cfg.
const (
	haproxyStatFile = "testdata/haproxy-2.6.12-show-stat.csv"
	haproxyInfoFile = "testdata/haproxy-2.6.12-show-info.txt"
)

// parseStat reads a show stat answer as encoding/csv does, checking
// HAProxy's framing: "# " before the header, a comma after every field,
// so each record ends with an empty one, and every record as long as the
// header. It returns the field names and the rows, by name.
func parseStat(t *testing.T, answer string) ([]string, []map[string]string) {
	t.Helper()
	if !strings.HasPrefix(answer, "# ") {
		t.Fatalf("show stat does not start with \"# \":\n%s", answer)
	}
	r := csv.NewReader(strings.NewReader(answer[2:]))
	r.FieldsPerRecord = 0 // every record as long as the first
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("show stat is not CSV with rows of one length: %v\n%s", err, answer)
	}
	header := recs[0]
	if header[len(header)-1] != "" {
		t.Fatalf("the header does not end with a comma: %q", header)
	}
	header = header[:len(header)-1]
	var rows []map[string]string
	for _, rec := range recs[1:] {
		if rec[len(rec)-1] != "" {
			t.Fatalf("a row does not end with a comma: %q", rec)
		}
		row := map[string]string{}
		for i, name := range header {
			row[name] = rec[i]
		}
		rows = append(rows, row)
	}
	return header, rows
}

func haproxyFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The header is HAProxy's, field for field; and what HAProxy answered
// parses the same way, each of its rows with as many fields.
func TestStatHeaderIsHAProxys(t *testing.T) {
	want, hrows := parseStat(t, haproxyFile(t, haproxyStatFile))
	if len(hrows) != 5 {
		t.Fatalf("HAProxy's answer has %d rows, want its FRONTEND, 3 servers and BACKEND", len(hrows))
	}
	if !slices.Equal(statFields[:], want) {
		t.Errorf("show stat's fields differ from HAProxy 2.6's:\n got %q\nwant %q", statFields, want)
	}
	var b strings.Builder
	statHeader(&b)
	if line, _, _ := strings.Cut(haproxyFile(t, haproxyStatFile), "\n"); b.String() != line+"\n" {
		t.Errorf("header line:\n got %q\nwant %q", b.String(), line+"\n")
	}
}

// Show info's keys are HAProxy's, in HAProxy's order; HAProxy's own
// answer is in that order too.
func TestInfoKeysInHAProxysOrder(t *testing.T) {
	p := twoServerProxy(t)
	_, path := listen(t, p, nil)
	out := ctl(t, path, "show info")
	keys := func(answer string) (ks []string, values map[string]string) {
		values = map[string]string{}
		for line := range strings.Lines(answer) {
			k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
			if ok && slices.Contains(infoFields[:], k) {
				ks = append(ks, k)
				values[k] = v
			}
		}
		return ks, values
	}
	inOrder := func(who string, ks []string) {
		t.Helper()
		last := -1
		for _, k := range ks {
			i := slices.Index(infoFields[:], k)
			if i <= last {
				t.Errorf("%s: %s out of HAProxy's order: %q", who, k, ks)
			}
			last = i
		}
	}
	hkeys, _ := keys(haproxyFile(t, haproxyInfoFile))
	if len(hkeys) != 69 { // 72 keys; no description, no zlib ones
		t.Errorf("HAProxy's answer has %d known keys, want 69: %q", len(hkeys), hkeys)
	}
	inOrder("HAProxy", hkeys)
	got, v := keys(out)
	inOrder("ringproxy", got)
	// Every key HAProxy gave but those ringproxy has no value for.
	var missing []string
	for _, k := range hkeys {
		if !slices.Contains(got, k) {
			missing = append(missing, k)
		}
	}
	wantMissing := []string{"Release_date", "PoolAlloc_MB", "PoolUsed_MB", "PoolFailed", "Tasks", "Run_queue", "Idle_pct",
		"Jobs", "TotalSplicdedBytesOut", "BytesOutRate", "PoolAlloc_bytes", "PoolUsed_bytes"}
	if !slices.Equal(missing, wantMissing) {
		t.Errorf("keys left out: %q, want %q", missing, wantMissing)
	}
	// HAProxy's keys alone (the empty line that ends the answer is the
	// socket's: TestAnswersEndWithAnEmptyLine).
	if !strings.HasPrefix(out, "Name: ringproxy\nVersion: dev\nNbthread: 2\nNbproc: 1\nProcess_num: 1\nPid: "+strconv.Itoa(os.Getpid())+"\n") {
		t.Errorf("show info starts:\n%s", out[:min(len(out), 200)])
	}
	if !strings.HasSuffix(out, "\nTainted: 0\n") {
		t.Errorf("show info does not end with HAProxy's last key:\n%s", out)
	}
	for k, want := range map[string]string{"Maxconn": "100", "Hard_maxconn": "100", "CurrConns": "0", "CumConns": "0",
		"Listeners": "2", "Memmax_MB": "0", "MaxSslConns": "0", "Stopping": "0", "Tainted": "0", "BusyPolling": "0",
		"ConnRate": "0", "MaxConnRate": "0", "SessRate": "0", "MaxSessRate": "0"} {
		if v[k] != want {
			t.Errorf("%s: %q, want %q", k, v[k], want)
		}
	}
	for _, k := range []string{"Ulimit-n", "Maxsock"} {
		if n, err := strconv.Atoi(v[k]); err != nil || n < 100 {
			t.Errorf("%s: %q, want the fd limit", k, v[k])
		}
	}
	if human := ctl(t, path, "show info human"); !strings.HasPrefix(human, "engine: uring\nworkers: 2\n") || strings.Contains(human, "Name:") ||
		!strings.Contains(human, "admin_connections: 1\n") {
		t.Errorf("show info human:\n%s", human)
	}
	if out := ctl(t, path, "show info typed"); !strings.HasPrefix(out, "error:") {
		t.Errorf("show info typed: %q", out)
	}
}

// BusyPolling is HAProxy's busy-polling option, on or off: here
// global.busy_poll.
func TestBusyPollingInfo(t *testing.T) {
	for on, want := range map[bool]string{false: "0", true: "1"} {
		s := session.Snapshot{Time: time.Now(), Process: session.ProcessStats{BusyPolling: on}}
		if got := haproxyInfo(s, 0); !strings.Contains(got, "\nBusyPolling: "+want+"\n") {
			t.Errorf("busy polling %v:\n%s", on, got)
		}
	}
}

func TestUptimeFormat(t *testing.T) {
	for up, want := range map[float64]string{62: "0d 0h01m02s", 0.4: "0d 0h00m00s", 90061: "1d 1h01m01s", 36000: "0d 10h00m00s"} {
		s := session.Snapshot{Time: time.Now(), Uptime: up}
		if got := haproxyInfo(s, 0); !strings.Contains(got, "\nUptime: "+want+"\nUptime_sec: "+strconv.Itoa(int(up))+"\n") {
			t.Errorf("uptime %vs:\n%s", up, got)
		}
	}
}

// statProxy runs frontend web over backend app, whose servers are tcp
// checked: a (an echo) and b (refuses connections); and backend spare,
// unchecked, with s1 and backup s2, its servers also echoes.
func statProxy(t *testing.T) (*session.Proxy, netip.AddrPort, string) {
	a := testbed.StartEcho(t)
	app := &session.Backend{Name: "app", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: 10 * time.Second,
		Check:   &session.Check{Kind: "tcp", Interval: 50 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 2},
		Servers: []*session.Server{{Name: "a", Address: a.Addr(), Weight: 10, MaxConn: 50}, {Name: "b", Address: testbed.DeadAddr(t), Weight: 20}}}
	spare := &session.Backend{Name: "spare", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: 10 * time.Second,
		Servers: []*session.Server{{Name: "s1", Address: testbed.StartEcho(t).Addr(), Weight: 1}, {Name: "s2", Address: testbed.StartEcho(t).Addr(), Weight: 1, Backup: true}}}
	fe := &session.Frontend{Name: "web", Binds: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		BackendName: "app", Backend: app, TimeoutClient: 10 * time.Second, RateLimit: 500}
	cfg := &session.Config{Global: session.Global{Engine: "uring", Workers: 2, MaxConn: 100, MaxAccept: 16,
		BufSize: 16 << 10, Grace: time.Second}, Frontends: []*session.Frontend{fe}, Backends: []*session.Backend{app, spare}}
	p := startProxy(t, cfg)
	_, path := listen(t, p, nil)
	return p, p.Addrs("web")[0], path
}

// byName finds the row of pxname/svname.
func byName(t *testing.T, rows []map[string]string, px, sv string) map[string]string {
	t.Helper()
	for _, r := range rows {
		if r["pxname"] == px && r["svname"] == sv {
			return r
		}
	}
	t.Fatalf("no row %s/%s", px, sv)
	return nil
}

// A live proxy's figures land in HAProxy's columns: a session open with
// bytes moved, a server DOWN by its checks, one in maintenance, a
// backup; rows in HAProxy's order, every one as long as the header.
func TestShowStatLiveValues(t *testing.T) {
	p, addr, path := statProxy(t)
	if err := p.SetServerState("spare", "s1", session.AdminMaint); err != nil {
		t.Fatal(err)
	}
	testbed.WaitFor(t, 5*time.Second, func() bool {
		_, rows := parseStat(t, ctl(t, path, "show stat"))
		return byName(t, rows, "app", "b")["status"] == "DOWN"
	}, "b to go DOWN")

	// Bytes are counted when a session ends, as HAProxy counts a TCP
	// stream's: one session moves 1000 bytes each way and closes, a second
	// one stays open.
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := dial()
	msg := strings.Repeat("x", 1000)
	io.WriteString(c, msg)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		t.Fatalf("echo through the proxy: %v", err)
	}
	c.Close()
	testbed.WaitFor(t, 5*time.Second, func() bool { return p.Snapshot().Frontends[0].BytesOut == 1000 }, "the echoed bytes to be counted")
	held := dial()
	io.WriteString(held, "y")
	held.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(held, make([]byte, 1)); err != nil {
		t.Fatalf("echo through the proxy: %v", err)
	}
	var answer string
	var rows []map[string]string
	testbed.WaitFor(t, 5*time.Second, func() bool {
		answer = ctl(t, path, "show stat")
		_, rows = parseStat(t, answer)
		return byName(t, rows, "app", "a")["scur"] == "1"
	}, "the second session to be counted")
	if !strings.HasSuffix(answer, ",\n") {
		t.Errorf("show stat does not end with a row")
	}

	var order []string
	for _, r := range rows {
		order = append(order, r["pxname"]+"/"+r["svname"])
	}
	if want := []string{"web/FRONTEND", "app/a", "app/b", "app/BACKEND", "spare/s1", "spare/s2", "spare/BACKEND"}; !slices.Equal(order, want) {
		t.Errorf("rows %q, want %q", order, want)
	}
	snap := p.Snapshot()
	b := snap.Backends[0].Servers[1]
	want := map[string]map[string]string{
		"web/FRONTEND": {"scur": "1", "smax": "1", "slim": "100", "stot": "2", "bin": "1000", "bout": "1000", "status": "OPEN",
			"pid": "1", "iid": "1", "sid": "0", "type": "0", "rate_lim": "500", "conn_tot": "2", "mode": "tcp", "-": "-",
			"qcur": "", "qmax": "", "econ": "", "weight": "", "check_status": "", "hrsp_2xx": "", "ssl_sess": "",
			"lastchg": "", "downtime": "", "lastsess": ""},
		"app/a": {"qcur": "0", "qmax": "0", "scur": "1", "smax": "1", "slim": "50", "stot": "2", "bin": "1000", "bout": "1000", "econ": "0",
			"wretr": "0", "wredis": "0", "downtime": "0",
			"status": "UP", "weight": "10", "uweight": "10", "act": "1", "bck": "0", "chkfail": "0", "chkdown": "0",
			"iid": "2", "sid": "1", "type": "2", "check_status": "L4OK", "check_desc": "Layer4 check passed",
			"last_chk": "", "check_code": "", "check_rise": "2", "check_fall": "2", "check_health": "3",
			"addr": snap.Backends[0].Servers[0].Addr, "mode": "tcp", "algo": "", "agg_server_status": ""},
		"app/b": {"scur": "0", "smax": "0", "slim": "", "stot": "0", "econ": strconv.FormatUint(b.ConnFailures, 10), "status": "DOWN",
			"weight": "20", "act": "1", "bck": "0", "chkdown": "1", "lastsess": "-1", "rate": "0", "rate_max": "0",
			"iid": "2", "sid": "2", "check_status": "L4CON", "check_desc": "Layer4 connection problem",
			"last_chk": "connect: connection refused", "check_health": "0"},
		"app/BACKEND": {"qcur": "0", "qmax": "0", "scur": "1", "smax": "1", "stot": "2", "bin": "1000", "bout": "1000",
			"econ": strconv.FormatUint(b.ConnFailures, 10), "status": "UP", "weight": "10", "uweight": "10", "act": "1", "bck": "0",
			"wretr": "0", "wredis": "0", "chkdown": "0", "downtime": "0",
			"iid": "2", "sid": "0", "type": "1", "algo": "roundrobin", "mode": "tcp", "chkfail": "", "slim": "",
			"agg_server_status": "0", "agg_server_check_status": "0", "agg_check_status": "0"},
		"spare/s1": {"status": "MAINT", "weight": "1", "act": "1", "bck": "0", "iid": "3", "sid": "1",
			"chkfail": "", "chkdown": "", "downtime": "", "check_status": "", "check_rise": "", "lastsess": "-1"},
		"spare/s2":      {"status": "no check", "act": "0", "bck": "1", "iid": "3", "sid": "2", "downtime": "", "lastsess": "-1"},
		"spare/BACKEND": {"status": "UP", "act": "0", "bck": "1", "weight": "1", "iid": "3", "type": "1", "chkdown": "0", "downtime": "0", "lastsess": "-1"},
	}
	for name, fields := range want {
		px, sv, _ := strings.Cut(name, "/")
		row := byName(t, rows, px, sv)
		for f, v := range fields {
			if _, ok := row[f]; !ok {
				t.Errorf("%s: no field %s", name, f)
			} else if row[f] != v {
				t.Errorf("%s %s = %q, want %q", name, f, row[f], v)
			}
		}
	}
	for f, least := range map[string]int{"check_duration": 0, "chkfail": 2} { // b's checks go on failing
		if n, err := strconv.Atoi(byName(t, rows, "app", "b")[f]); err != nil || n < least {
			t.Errorf("app/b %s = %q, want a number from %d", f, byName(t, rows, "app", "b")[f], least)
		}
	}
	// Ages and rates are whole numbers, at most the proxy's age; b went
	// DOWN once and stayed: its downtime is the time since.
	uptime := int(snap.Uptime) + 1
	for _, name := range []string{"web/FRONTEND", "app/a", "app/b", "app/BACKEND", "spare/s1", "spare/s2", "spare/BACKEND"} {
		px, sv, _ := strings.Cut(name, "/")
		row := byName(t, rows, px, sv)
		fields := []string{"rate", "rate_max"}
		if sv == "FRONTEND" {
			fields = append(fields, "conn_rate", "conn_rate_max")
		} else {
			fields = append(fields, "lastchg")
		}
		for _, f := range fields {
			if n, err := strconv.Atoi(row[f]); err != nil || n < 0 || n > uptime {
				t.Errorf("%s %s = %q, want a whole number from 0 to %d", name, f, row[f], uptime)
			}
		}
	}
	if b := byName(t, rows, "app", "b"); b["downtime"] != b["lastchg"] {
		t.Errorf("app/b went DOWN once: downtime %q, want its lastchg %q", b["downtime"], b["lastchg"])
	}

	// The filter: HAProxy's IID|PROXY TYPE SID.
	for cmd, want := range map[string][]string{
		"show stat -1 -1 -1":   order,
		"show stat 2 -1 -1":    {"app/a", "app/b", "app/BACKEND"},
		"show stat app 4 2":    {"app/b"},
		"show stat -1 1 -1":    {"web/FRONTEND"},
		"show stat -1 2 -1":    {"app/BACKEND", "spare/BACKEND"},
		"show stat spare 3 -1": {"spare/BACKEND"},
	} {
		_, rows := parseStat(t, ctl(t, path, cmd))
		var got []string
		for _, r := range rows {
			got = append(got, r["pxname"]+"/"+r["svname"])
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
	for _, cmd := range []string{"show stat typed", "show stat 1 x -1", "show stat 1 2"} {
		if out := ctl(t, path, cmd); !strings.HasPrefix(out, "error:") {
			t.Errorf("%s: %q", cmd, out)
		}
	}
	if human := ctl(t, path, "show stat human"); !strings.Contains(human, "app,a,UP,10,1,2,1000,1000,0\n") || !strings.Contains(human, "spare,s1,MAINT,") {
		t.Errorf("show stat human:\n%s", human)
	}
}

// Server states in HAProxy's spelling, from the checks' streaks.
func TestServerStatus(t *testing.T) {
	chk := func(succ, fail int, passive int64) *session.CheckStats {
		return &session.CheckStats{Rise: 2, Fall: 3, Successes: succ, Failures: fail, PassiveFailures: passive}
	}
	for _, c := range []struct {
		sv     session.ServerStats
		status string
		health int
	}{
		{session.ServerStats{Up: true}, "no check", -1},
		{session.ServerStats{Up: false}, "DOWN", -1},
		{session.ServerStats{Up: true, Disabled: true, Admin: "maint", Check: chk(5, 0, 0)}, "MAINT", 4},
		{session.ServerStats{Up: true, Check: chk(5, 0, 0)}, "UP", 4},
		{session.ServerStats{Up: true, Check: chk(0, 1, 0)}, "UP 2/3", 3},
		{session.ServerStats{Up: true, Check: chk(0, 2, 0)}, "UP 1/3", 2},
		{session.ServerStats{Up: true, Check: chk(3, 0, 2)}, "UP 1/3", 2},
		{session.ServerStats{Up: false, Check: chk(0, 7, 0)}, "DOWN", 0},
		{session.ServerStats{Up: false, Check: chk(1, 0, 0)}, "DOWN 1/2", 1},
	} {
		if got := serverStatus(c.sv); got != c.status {
			t.Errorf("%+v %+v: status %q, want %q", c.sv, c.sv.Check, got, c.status)
		}
		if c.sv.Check != nil {
			if got := checkHealth(c.sv); got != c.health {
				t.Errorf("%+v %+v: check_health %d, want %d", c.sv, c.sv.Check, got, c.health)
			}
		}
	}
	for _, c := range []struct {
		up   bool
		t    uint64
		down uint64
	}{{true, 0, 0}, {false, 1, 1}, {true, 2, 1}, {false, 3, 2}, {true, 1, 0}, {false, 2, 1}} {
		sv := session.ServerStats{Up: c.up, Check: &session.CheckStats{Transitions: c.t}}
		if got := downTransitions(sv); got != c.down {
			t.Errorf("up %v after %d transitions: chkdown %d, want %d", c.up, c.t, got, c.down)
		}
	}
}

// The checker's reasons (session/health/check.go) in HAProxy's statuses.
func TestCheckStatus(t *testing.T) {
	at := time.Unix(1000, 0)
	sv := func(kind string, ok bool, reason string) session.ServerStats {
		c := &session.CheckStats{Kind: kind, LastOK: ok, LastCheck: at, LastDuration: 3 * time.Millisecond, ExpectStatus: 204}
		if reason != "" {
			c.LastError, c.LastErrorAt = "check app/a 127.0.0.1:80: "+reason, at.Add(3*time.Millisecond)
		}
		return session.ServerStats{Name: "a", Addr: "127.0.0.1:80", Check: c}
	}
	for _, c := range []struct {
		sv     session.ServerStats
		status string
		code   int
	}{
		{session.ServerStats{Check: &session.CheckStats{}}, "INI", 0},
		{sv("tcp", true, ""), "L4OK", 0},
		{sv("http", true, ""), "L7OK", 204},
		{sv("expect", true, ""), "L7OK", 0},
		{sv("tcp", false, "connect: connection refused"), "L4CON", 0},
		{sv("tcp", false, "connect: timeout after 2s"), "L4TOUT", 0},
		{sv("http", false, "http status 503, want 204"), "L7STS", 503},
		{sv("http", false, `http: response is not HTTP: "SSH-2.0"`), "L7RSP", 0},
		{sv("http", false, "http: status line and headers exceed 16384 bytes"), "L7RSP", 0},
		{sv("http", false, "read status line: timeout after 2s"), "L7TOUT", 0},
		{sv("http", false, "read headers: connection closed by server"), "L7RSP", 0},
		{sv("http", false, "send: broken pipe"), "L4CON", 0},
		{sv("expect", false, `read: connection closed by server, got "220 x", want "OK"`), "L7RSP", 0},
		{sv("expect", false, `read: timeout after 1s, got "", want "OK"`), "L7TOUT", 0},
		{sv("expect", false, `read: connection reset by peer, got "", want "OK"`), "L4CON", 0},
		{sv("expect", false, `expect: no match in the first 16384 bytes, got "----", want "OK"`), "L7RSP", 0},
		// The steps of a tcp check (its pass reads as an expect's).
		{sv("expect", false, "step 2 send: broken pipe"), "L4CON", 0},
		{sv("expect", false, "step 2 send: timeout after 1s"), "L7TOUT", 0},
		{sv("expect", false, `step 6 expect: timeout after 100ms, got "$581\r\nrole:slave\r\n"..., want "role:master"`), "L7TOUT", 0},
		{sv("expect", false, `step 4 expect: connection closed by server, got "-ERR: x", want "+PONG"`), "L7RSP", 0},
		{sv("expect", false, `step 4 expect: connection reset by peer, got "", want "+PONG"`), "L4CON", 0},
		{sv("expect", false, `step 2 expect: no match in the first 16384 bytes, got "--", want regexp "^[SN]"`), "L7RSP", 0},
	} {
		got := lastCheck("app", c.sv)
		if got.status != c.status || got.code != c.code || got.desc != checkDesc[c.status] || got.desc == "" {
			t.Errorf("%q: %+v, want %s code %d", c.sv.Check.LastError, got, c.status, c.code)
		}
		if !c.sv.Check.LastOK && c.sv.Check.LastError != "" && !strings.HasSuffix(c.sv.Check.LastError, ": "+got.detail) {
			t.Errorf("%q: last_chk %q", c.sv.Check.LastError, got.detail)
		}
	}
	// A failure whose reason was overwritten since (a skipped check) is UNK.
	s := sv("tcp", false, "connect: connection refused")
	s.Check.LastError, s.Check.LastErrorAt = "check app/a 127.0.0.1:80 skipped: connect: too many open files", at.Add(time.Second)
	if got := lastCheck("app", s); got.status != "UNK" {
		t.Errorf("overwritten reason: %+v", got)
	}
}

// A field holding a comma, a quote or a line break is quoted as HAProxy
// quotes it, so the row keeps its length.
func TestCSVQuoting(t *testing.T) {
	const v = "read: timeout after 1s, got \"a\nb\", want \"OK\""
	r := newRow("px", "sv", typeServer, 1, 1)
	r.set("last_chk", v)
	var b strings.Builder
	statHeader(&b)
	r.line(&b)
	_, rows := parseStat(t, b.String())
	if got := rows[0]["last_chk"]; got != v {
		t.Errorf("last_chk read back as %q", got)
	}
	if !strings.Contains(b.String(), ",\"read: timeout after 1s, got \"\"a\nb\"\", want \"\"OK\"\"\",") {
		t.Errorf("not quoted as HAProxy's csv_enc does:\n%s", b.String())
	}
}

// ringproxy fills no field that HAProxy leaves empty in a row of the
// same kind (testdata: HAProxy's FRONTEND, checked servers s1 and s2,
// unchecked backup s3, BACKEND), so a tool reads nothing there that
// HAProxy would not give it. A server's slim is the exception HAProxy
// makes too: it has one when the server has a maxconn.
func TestNoFieldHAProxyLeavesEmpty(t *testing.T) {
	_, hrows := parseStat(t, haproxyFile(t, haproxyStatFile))
	filled := func(rows ...map[string]string) map[string]bool {
		m := map[string]bool{"slim": true}
		for _, r := range rows {
			for f, v := range r {
				if v != "" {
					m[f] = true
				}
			}
		}
		return m
	}
	kinds := map[string]map[string]bool{
		"frontend": filled(byName(t, hrows, "fe1", "FRONTEND")),
		"checked":  filled(byName(t, hrows, "be1", "s1"), byName(t, hrows, "be1", "s2")),
		"server":   filled(byName(t, hrows, "be1", "s3")),
		"backend":  filled(byName(t, hrows, "be1", "BACKEND")),
	}
	p, addr, path := statProxy(t)
	p.SetServerState("spare", "s1", session.AdminMaint)
	testbed.WaitFor(t, 5*time.Second, func() bool {
		_, rows := parseStat(t, ctl(t, path, "show stat"))
		return byName(t, rows, "app", "b")["status"] == "DOWN"
	}, "b to go DOWN")
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, rows := parseStat(t, ctl(t, path, "show stat"))
	for _, r := range rows {
		kind := "server"
		switch {
		case r["svname"] == "FRONTEND":
			kind = "frontend"
		case r["svname"] == "BACKEND":
			kind = "backend"
		case r["pxname"] == "app":
			kind = "checked"
		}
		for f, v := range r {
			if v != "" && !kinds[kind][f] {
				t.Errorf("%s/%s: %s = %q, where HAProxy leaves a %s's empty", r["pxname"], r["svname"], f, v, kind)
			}
		}
	}
}

// queueProxy is testdata/haproxy-2.6.12-queue.cfg in ringproxy's terms:
// frontend fe2 over backend be2, whose one server (an echo) takes one
// session at a time; and frontend fe1 over be1, where server dead
// refuses connections and live echoes (retries 2, redispatch).
func queueProxy(t *testing.T) (*session.Proxy, netip.AddrPort, netip.AddrPort, string) {
	echo := testbed.StartEcho(t).Addr()
	be2 := &session.Backend{Name: "be2", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: 5 * time.Second,
		TimeoutQueue: 5 * time.Second, Servers: []*session.Server{{Name: "one", Address: echo, Weight: 1, MaxConn: 1}}}
	be1 := &session.Backend{Name: "be1", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: 5 * time.Second,
		Retries: 2, Redispatch: true,
		Servers: []*session.Server{{Name: "dead", Address: testbed.DeadAddr(t), Weight: 1}, {Name: "live", Address: echo, Weight: 1}}}
	bind := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
	fe2 := &session.Frontend{Name: "fe2", Binds: bind, BackendName: "be2", Backend: be2, TimeoutClient: 5 * time.Second}
	fe1 := &session.Frontend{Name: "fe1", Binds: bind, BackendName: "be1", Backend: be1, TimeoutClient: 5 * time.Second}
	cfg := &session.Config{Global: session.Global{Engine: "uring", Workers: 2, MaxConn: 1000, MaxAccept: 16,
		BufSize: 16 << 10, Grace: time.Second}, Frontends: []*session.Frontend{fe2, fe1}, Backends: []*session.Backend{be2, be1}}
	p := startProxy(t, cfg)
	_, path := listen(t, p, nil)
	return p, p.Addrs("fe2")[0], p.Addrs("fe1")[0], path
}

// Two clients on a server of maxconn 1, one of them queued: the queue
// and session gauges and peaks, the retry and redispatch counts, the
// last session and the DOWN history read as HAProxy's did in the same
// state (testdata/haproxy-2.6.12-queue-show-stat.csv). stot is not
// compared: HAProxy counts the queued session on the backend already,
// ringproxy once it reaches a server.
func TestShowStatQueueLikeHAProxy(t *testing.T) {
	_, hrows := parseStat(t, haproxyFile(t, "testdata/haproxy-2.6.12-queue-show-stat.csv"))
	p, addr, _, path := queueProxy(t)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, "x")
		return c
	}
	dial()
	dial()
	testbed.WaitFor(t, 5*time.Second, func() bool {
		s := p.Snapshot()
		return s.Backends[0].CurQueue == 1 && s.Backends[0].Servers[0].CurSessions == 1 && s.Backends[0].Servers[0].Sessions == 1
	}, "one session on the server and one queued")
	time.Sleep(100 * time.Millisecond)
	_, rows := parseStat(t, ctl(t, path, "show stat"))
	for _, c := range []struct {
		sv     string
		fields []string
	}{
		{"FRONTEND", []string{"scur", "smax", "stot", "slim"}},
		{"one", []string{"qcur", "qmax", "scur", "smax", "slim", "stot", "econ", "wretr", "wredis", "status", "downtime", "chkdown", "lastsess"}},
		{"BACKEND", []string{"qcur", "qmax", "scur", "smax", "econ", "wretr", "wredis", "status", "chkdown", "downtime", "lastsess"}},
	} {
		px := "be2"
		if c.sv == "FRONTEND" {
			px = "fe2"
		}
		h, r := byName(t, hrows, px, c.sv), byName(t, rows, px, c.sv)
		for _, f := range c.fields {
			if r[f] != h[f] {
				t.Errorf("%s/%s %s = %q, HAProxy's %q", px, c.sv, f, r[f], h[f])
			}
		}
	}
}

// Per server, a retry on the same server counts in its wretr and the
// redispatch away from it in its wredis, as HAProxy counts them; the
// BACKEND row sums them. A server's lastsess is its age in seconds, -1
// for never; once the sampler has seen the sessions, so are the rates.
func TestShowStatRetriesAndRates(t *testing.T) {
	_, _, addr, path := queueProxy(t)
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "x")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("echo through the proxy: %v", err)
		}
		c.Close()
	}
	var rows []map[string]string
	testbed.WaitFor(t, 3*time.Second, func() bool {
		_, rows = parseStat(t, ctl(t, path, "show stat"))
		return byName(t, rows, "fe1", "FRONTEND")["rate_max"] != "0"
	}, "the sampler to see the sessions")
	dead, live, be := byName(t, rows, "be1", "dead"), byName(t, rows, "be1", "live"), byName(t, rows, "be1", "BACKEND")
	n, err := strconv.Atoi(dead["wredis"])
	if err != nil || n == 0 || dead["wretr"] != dead["wredis"] || dead["econ"] != strconv.Itoa(2*n) {
		t.Errorf("dead: wretr %q, wredis %q, econ %q; want n, n, 2n for n > 0", dead["wretr"], dead["wredis"], dead["econ"])
	}
	if live["wretr"] != "0" || live["wredis"] != "0" || live["stot"] != "4" {
		t.Errorf("live: wretr %q, wredis %q, stot %q; want 0, 0, 4", live["wretr"], live["wredis"], live["stot"])
	}
	if be["wretr"] != dead["wretr"] || be["wredis"] != dead["wredis"] {
		t.Errorf("BACKEND: wretr %q, wredis %q; want dead's %q, %q", be["wretr"], be["wredis"], dead["wretr"], dead["wredis"])
	}
	if dead["lastsess"] != "-1" || (live["lastsess"] != "0" && live["lastsess"] != "1") || be["lastsess"] != live["lastsess"] {
		t.Errorf("lastsess: dead %q, live %q, BACKEND %q; want -1, 0 or 1, live's", dead["lastsess"], live["lastsess"], be["lastsess"])
	}
	fe := byName(t, rows, "fe1", "FRONTEND")
	for row, fields := range map[string]map[string]string{"fe1/FRONTEND": fe, "be1/live": live, "be1/BACKEND": be} {
		for _, f := range []string{"rate_max"} {
			if n, err := strconv.Atoi(fields[f]); err != nil || n < 2 || n > 4 {
				t.Errorf("%s %s = %q after 4 sessions in a burst, want 2 to 4", row, f, fields[f])
			}
		}
	}
	if n, err := strconv.Atoi(fe["conn_rate_max"]); err != nil || n < 2 || n > 4 {
		t.Errorf("fe1/FRONTEND conn_rate_max = %q after 4 connections in a burst, want 2 to 4", fe["conn_rate_max"])
	}
}
