package config

import (
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"ringproxy/session"
	"ringproxy/session/balance"
)

// build walks the decoded document. Readers keep going after a problem so
// that one run reports everything wrong with the file.
func build(pr *problems, doc map[string]any) *session.Config {
	root := newTable(pr, node{}, doc)
	c := &session.Config{
		Global: readGlobal(root.sub("global")),
		Log:    readLog(root.sub("log")),
	}
	c.Admin = readAdmin(root)
	c.Backends = readBackends(root)
	c.Frontends = readFrontends(root, c.Backends)
	root.done()
	return c
}

const maxInt = math.MaxInt32 // keeps products like maxconn*bufsize in int64

func readGlobal(t *table) session.Global {
	g := session.Global{
		Engine:    readEngine(t),
		Workers:   t.integer("workers", 0, 0, 4096),
		MaxConn:   t.integer("maxconn", 20000, 1, maxInt),
		MaxSock:   t.integer("maxsock", 0, 0, maxInt),
		MaxAccept: t.integer("maxaccept", 64, 1, 1024),
		BufSize:   t.size("bufsize", 16<<10, 1<<10, 1<<20),
		Buffers:   readBuffers(t),
		Grace:     t.duration("grace", 10*time.Second, false),
		Splice:    readSplice(t),
	}
	g.HardStopAfter = readHardStopAfter(t)
	g.MaxConnAuto = !t.has("maxconn")
	g.BatchWait = readBatchWait(t, g.Engine)
	if g.Workers == 0 {
		g.Workers = runtime.NumCPU()
	}
	t.done()
	return g
}

// readHardStopAfter reads global.hard_stop_after: "" (the default) lets
// a generation replaced by a reload serve until its sessions end.
func readHardStopAfter(t *table) time.Duration {
	if v, ok := t.get("hard_stop_after"); ok && v == "" {
		return 0
	}
	return t.duration("hard_stop_after", 0, true)
}

// readSplice reads global.splice: "auto" (long streams are spliced) or
// "off".
func readSplice(t *table) bool {
	switch v := t.str("splice", "auto"); v {
	case "auto":
		return true
	case "off":
		return false
	default:
		t.fail("splice", nil, "unknown mode %q (want \"auto\" or \"off\")", v)
	}
	return true
}

// DefaultBatchWait is global.batch_wait's default: the longest a
// completion waits for company, which the engine asks for only when its
// load says company is due within half of it (ring.batchWait).
const DefaultBatchWait = 50 * time.Microsecond

// readBatchWait reads global.batch_wait, which only the uring engine has:
// epoll_wait cannot wait for a number of events.
func readBatchWait(t *table, engine string) time.Duration {
	set := t.has("batch_wait")
	d := t.duration("batch_wait", DefaultBatchWait, false)
	switch {
	case d > time.Millisecond:
		t.fail("batch_wait", nil, "must be at most 1ms, got %s", d)
		return DefaultBatchWait
	case engine == "epoll" && set && d != 0:
		t.fail("batch_wait", nil, "applies to the uring engine only (engine is \"epoll\"); remove it or set \"0\"")
		return 0
	case engine == "epoll":
		return 0
	}
	return d
}

func readEngine(t *table) string {
	e := t.str("engine", "uring")
	switch e {
	case "uring", "epoll":
		return e
	default:
		t.fail("engine", nil, "unknown engine %q (want \"uring\" or \"epoll\")", e)
	}
	return "uring"
}

// readBuffers wants a power of two so an arena index is a mask, not a
// modulo.
func readBuffers(t *table) int {
	n := t.integer("buffers", 0, 0, 32768)
	if n != 0 && (n < 16 || n&(n-1) != 0) {
		t.fail("buffers", nil, "must be 0 (auto) or a power of two from 16 to 32768, got %d", n)
		return 0
	}
	return n
}

var logLevels = []string{"debug", "info", "warn", "error"}

func readLog(t *table) session.Log {
	l := session.Log{Level: t.str("level", "info"), Access: t.boolean("access", true), Target: t.str("target", "stdout")}
	if !slices.Contains(logLevels, l.Level) {
		t.fail("level", nil, "unknown level %q (want debug, info, warn or error)", l.Level)
		l.Level = "info"
	}
	if !slices.Contains([]string{"stdout", "stderr", "syslog"}, l.Target) {
		t.fail("target", nil, "unknown target %q (want stdout, stderr or syslog)", l.Target)
		l.Target = "stdout"
	}
	t.done()
	return l
}

// rejectAdmin refuses [admin] outright: a stats address that parses but
// never listens would look like a broken server rather than a missing
// feature.
// readAdmin reads [admin]: the stats listener. The runtime socket is not
// built yet and is refused.
func readAdmin(root *table) session.Admin {
	var ad session.Admin
	if !root.has("admin") {
		return ad
	}
	a := root.sub("admin")
	if s := a.str("stats", ""); s != "" {
		ap, err := parseAddr(s)
		if err != nil {
			a.fail("stats", errCause(err), "%v", err)
		} else {
			ad.Stats = ap
		}
	}
	ad.Socket = a.str("socket", "")
	ad.SocketMode = 0o600
	if m := a.str("socket_mode", "0600"); m != "" {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil || v > 0o777 {
			a.fail("socket_mode", nil, "bad mode %q: want octal permissions like \"0600\"", m)
		} else {
			ad.SocketMode = uint32(v)
		}
	}
	a.done()
	return ad
}

func readFrontends(root *table, backends []*session.Backend) []*session.Frontend {
	byName := map[string]*session.Backend{}
	for _, b := range backends {
		if _, dup := byName[b.Name]; !dup && b.Name != "" {
			byName[b.Name] = b
		}
	}
	lists := root.list("frontend")
	if len(lists) == 0 && !root.bad["frontend"] {
		root.pr.add("", "", nil, "no [[frontend]]: nothing would listen")
	}
	names := map[string]string{}
	bound := map[netip.AddrPort]string{}
	var out []*session.Frontend
	for _, t := range lists {
		f := readFrontend(t, bound)
		checkDup(t, names, f.Name, "frontend")
		if f.BackendName != "" {
			if f.Backend = byName[f.BackendName]; f.Backend == nil {
				t.fail("backend", nil, "no backend named %q", f.BackendName)
			}
		}
		out = append(out, f)
	}
	return out
}

// checkDup reports a name already used by an earlier element of the same
// list; names key stats, logs and admin commands, so they must be unique.
func checkDup(t *table, names map[string]string, name, what string) {
	if name == "" {
		return
	}
	if first, dup := names[name]; dup {
		t.fail("name", nil, "duplicate %s name %q (also %s)", what, name, first)
		return
	}
	names[name] = t.at.label
}

func readFrontend(t *table, bound map[netip.AddrPort]string) *session.Frontend {
	f := &session.Frontend{Name: t.name()}
	f.Binds = readBinds(t, bound)
	if v, ok := t.get("backend"); !ok || v == "" {
		t.failHere("backend", "missing backend")
	} else {
		f.BackendName = t.str("backend", "")
	}
	f.MaxConn = t.integer("maxconn", 0, 0, maxInt)
	f.TimeoutClient = t.duration("timeout_client", 30*time.Second, true)
	f.TCPNoDelay = t.boolean("tcp_nodelay", true)
	f.KeepAlive = t.boolean("keepalive", false)
	f.NoLinger = t.boolean("nolinger", false)
	f.Allow = readPrefixes(t, "allow")
	f.Deny = readPrefixes(t, "deny")
	f.RateLimit = t.integer("rate_limit", 0, 0, 1_000_000)
	f.PerSourceRate = t.integer("per_source_rate", 0, 0, 1_000_000)
	f.AcceptProxy = t.boolean("accept_proxy", false)
	t.done()
	return f
}

// readPrefixes reads a list of CIDRs ("10.0.0.0/8", "2001:db8::/32"); a
// bare address means that one host.
func readPrefixes(t *table, k string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range t.strs(k) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				t.fail(k, err, "%s[%d]: bad CIDR %q: want e.g. \"10.0.0.0/8\" or \"2001:db8::/32\"", k, i, s)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p != p.Masked() {
			t.fail(k, nil, "%s[%d]: %q has host bits set (did you mean %s?)", k, i, s, p.Masked())
			continue
		}
		out = append(out, p)
	}
	return out
}

// readBinds parses the bind list and claims each address in bound, keyed
// across all frontends, because two listeners on one address would split
// its traffic between them. Port 0 (kernel-chosen, for tests) never
// collides.
func readBinds(t *table, bound map[netip.AddrPort]string) []netip.AddrPort {
	list := t.strs("bind")
	if len(list) == 0 && !t.bad["bind"] {
		t.failHere("bind", "no bind address")
	}
	var out []netip.AddrPort
	for i, s := range list {
		n := t.at.child("bind").elem(i)
		ap, err := parseAddr(s)
		if err != nil {
			t.pr.add(n.key, n.label, errCause(err), "%v", err)
			continue
		}
		if first, dup := bound[ap]; dup && ap.Port() != 0 {
			t.pr.add(n.key, n.label, nil, "%s is already bound by %s", ap, first)
			continue
		}
		bound[ap] = n.label
		out = append(out, ap)
	}
	return out
}

func readBackends(root *table) []*session.Backend {
	names := map[string]string{}
	var out []*session.Backend
	for _, t := range root.list("backend") {
		b := readBackend(t)
		checkDup(t, names, b.Name, "backend")
		out = append(out, b)
	}
	return out
}

func readBackend(t *table) *session.Backend {
	b := &session.Backend{
		Name:           t.name(),
		Balance:        readBalance(t),
		TimeoutConnect: t.duration("timeout_connect", 5*time.Second, true),
		TimeoutServer:  t.duration("timeout_server", 30*time.Second, true),
		TimeoutTunnel:  t.duration("timeout_tunnel", 0, false),
		TimeoutQueue:   t.duration("timeout_queue", 0, false),
		Retries:        t.integer("retries", 3, 0, 100),
		Redispatch:     t.boolean("redispatch", true),
		SendProxy:      readSendProxy(t),
	}
	if t.has("check") {
		b.Check = readCheck(t.sub("check"))
	}
	names := map[string]string{}
	for _, st := range t.list("server") {
		s := readServer(st)
		checkDup(st, names, s.Name, "server")
		b.Servers = append(b.Servers, s)
	}
	if len(b.Servers) == 0 {
		t.failHere("server", "no servers")
	} else {
		checkBalancer(t, b)
	}
	t.done()
	return b
}

func readBalance(t *table) string {
	v := t.str("balance", "roundrobin")
	if !slices.Contains(balance.Algorithms, v) {
		t.fail("balance", nil, "unknown balance %q (want roundrobin, static-rr, leastconn, source, consistent, random or first)", v)
		return "roundrobin"
	}
	return v
}

// checkBalancer builds the backend's balancer once, so what it refuses
// (two servers at one address under consistent hashing, say) is a config
// error with a line, not a failure at start.
func checkBalancer(t *table, b *session.Backend) {
	views := make([]balance.Server, len(b.Servers))
	for i, s := range b.Servers {
		views[i] = balance.Server{Name: s.Name, Addr: s.Address, Weight: s.Weight, Backup: s.Backup, MaxConn: s.MaxConn}
	}
	if _, err := balance.New(b.Balance, views, nil); err != nil {
		t.fail("balance", err, "%v", err)
	}
}

func readServer(t *table) *session.Server {
	s := &session.Server{Name: t.name(), Weight: 100}
	if v, ok := t.get("address"); !ok || v == "" {
		t.failHere("address", "missing address")
	} else if str := t.str("address", ""); str != "" {
		s.Address = readServerAddr(t, str)
	}
	s.Weight = t.integer("weight", 100, 0, balance.MaxWeight)
	s.MaxConn = t.integer("maxconn", 0, 0, maxInt)
	s.Backup = t.boolean("backup", false)
	t.done()
	return s
}

func readServerAddr(t *table, s string) netip.AddrPort {
	ap, err := parseAddr(s)
	if err != nil {
		t.fail("address", errCause(err), "%v", err)
		return ap
	}
	if ap.Port() == 0 {
		t.fail("address", nil, "bad address %q: port 0 cannot be connected to", s)
	}
	return ap
}

// readCheck reads [backend.check]. Defaults follow HAProxy's: a check
// every 2s, 1s to answer, 2 successes to rise and 3 failures to fall.
func readCheck(t *table) *session.Check {
	c := &session.Check{
		Kind:         t.str("kind", "tcp"),
		Interval:     t.duration("interval", 2*time.Second, true),
		Timeout:      t.duration("timeout", time.Second, true),
		Rise:         t.integer("rise", 2, 1, 100),
		Fall:         t.integer("fall", 3, 1, 100),
		Path:         t.str("path", "/"),
		Host:         t.str("host", ""),
		ExpectStatus: t.integer("expect_status", 200, 100, 599),
		Send:         t.str("send", ""),
		Expect:       t.str("expect", ""),
	}
	switch c.Kind {
	case "tcp":
	case "http":
		if !strings.HasPrefix(c.Path, "/") {
			t.fail("path", nil, "path %q must start with /", c.Path)
		}
	case "expect":
		if c.Expect == "" {
			t.failHere("expect", "kind = \"expect\" needs expect (the bytes the answer must contain)")
		}
	default:
		t.fail("kind", nil, "unknown check kind %q (want tcp, http or expect)", c.Kind)
	}
	if c.Timeout > c.Interval {
		t.fail("timeout", nil, "timeout %s is longer than interval %s", c.Timeout, c.Interval)
	}
	if err := session.HealthSpec(c).Validate(); err != nil && !t.failed() {
		t.failHere("kind", "%v", err) // what the checker refuses beyond the rules above
	}
	t.done()
	return c
}

func readSendProxy(t *table) string {
	switch v := t.str("send_proxy", ""); v {
	case "", "v1", "v2":
		return v
	default:
		t.fail("send_proxy", nil, "unknown send_proxy %q (want \"\", \"v1\" or \"v2\")", v)
	}
	return ""
}
