package config

import (
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"ringproxy/session"
	"ringproxy/session/balance"
	"ringproxy/session/clienthello"
	"ringproxy/session/route"
)

// build walks the decoded document. Readers keep going after a problem so
// that one run reports everything wrong with the file.
func build(pr *problems, doc map[string]any) *session.Config {
	root := newTable(pr, node{}, doc)
	c := &session.Config{
		Global: readGlobal(root.sub("global")),
		Log:    readLog(root.sub("log")),
	}
	pr.stateFile = c.Global.StateFile != ""
	c.Admin = readAdmin(root)
	c.Resolvers = readResolvers(root)
	c.Backends = readBackends(root)
	c.Frontends = readFrontends(root, c.Backends)
	if c.Resolvers == nil && named(c) {
		c.Resolvers = defaultResolvers()
	}
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
		// Off by default: a second ringproxy started on the same
		// addresses by mistake is refused instead of taking half the
		// clients (SO_REUSEPORT would let it).
		ReuseportShare: t.boolean("reuseport_share", false),
	}
	g.HardStopAfter = readHardStopAfter(t)
	g.StateFile = readStateFile(t)
	g.MaxConnAuto = !t.has("maxconn")
	g.BatchWait = readBatchWait(t, g.Engine)
	g.BusyPoll = readBusyPoll(t, g.Engine)
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

// readStateFile reads global.state_file: an absolute path to a file
// (its directory is checked by `check`, which runs where the service
// does), or "" for none.
func readStateFile(t *table) string {
	p := t.str("state_file", "")
	switch {
	case p == "":
		return ""
	case !filepath.IsAbs(p):
		t.fail("state_file", nil, "%q is relative: want an absolute path, such as \"/var/lib/ringproxy/state\"", p)
	case strings.HasSuffix(p, "/") || filepath.Base(filepath.Clean(p)) == "/":
		t.fail("state_file", nil, "%q names a directory: want a file in it, such as \"/var/lib/ringproxy/state\"", p)
	case strings.ContainsRune(p, 0):
		t.fail("state_file", nil, "the path holds a NUL byte")
	default:
		return filepath.Clean(p)
	}
	return ""
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

// DefaultBatchWait is global.batch_wait's default: off. Measured against
// 50us (issue #15, wrk through nginx, 5 alternating rounds), waiting for
// company never saved CPU: at 16 connections 14.7 us per request without
// it against 16.3 with it, at a fixed 20k req/s 26.7 against 31.3 with
// p50 0.125 ms against 0.217, and equal at 64 and 256. The window's timer
// costs a wakeup of its own whenever company is late.
const DefaultBatchWait = 0

// DefaultBusyPoll is global.busy_poll's default. A loop spins only
// where its trial measured that spinning pays (ring's busyPoll), so the
// default can serve a small pool and a busy proxy alike. Measured against
// "0" and HAProxy (issue #15's VM, ab.sh, 5 alternating rounds, means):
// wrk at one connection 14330 req/s and 65.6 us CPU per request against
// 5005 and 83.2 (HAProxy 3872, 153); redis-benchmark at one 11240 and
// 69.0 against 5091 and 87.4; at four connections and more equal to "0".
// 50us covers a loopback round trip through nginx here; a slower peer
// fails the trial and the loop sleeps as before.
const DefaultBusyPoll = 50 * time.Microsecond

// readBatchWait reads global.batch_wait: epoll_wait cannot wait for a
// number of events.
func readBatchWait(t *table, engine string) time.Duration {
	return readUringWait(t, "batch_wait", DefaultBatchWait, engine)
}

// readBusyPoll reads global.busy_poll: busy polling and its trial are
// the uring engine's (ring's busyPoll); the epoll engine has neither.
func readBusyPoll(t *table, engine string) time.Duration {
	return readUringWait(t, "busy_poll", DefaultBusyPoll, engine)
}

// readUringWait reads one of global's uring-only waits: at most 1ms, and
// with the epoll engine only "0".
func readUringWait(t *table, key string, def time.Duration, engine string) time.Duration {
	set := t.has(key)
	d := t.duration(key, def, false)
	switch {
	case d > time.Millisecond:
		t.fail(key, nil, "must be at most 1ms, got %s", d)
		return def
	case engine == "epoll" && set && d != 0:
		t.fail(key, nil, "applies to the uring engine only (engine is \"epoll\"); remove it or set \"0\"")
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
	l := session.Log{Level: t.str("level", "info"), Access: t.boolean("access", true), Target: t.str("target", "stdout"),
		Format: t.str("format", "tcplog")}
	if !slices.Contains([]string{"tcplog", "json"}, l.Format) {
		t.fail("format", nil, "unknown format %q (want tcplog or json)", l.Format)
		l.Format = "tcplog"
	}
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

// readAdmin reads [admin]: the stats listener, its admin actions and the
// runtime socket.
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
	ad.StatsAdmin = a.boolean("stats_admin", false)
	ad.StatsAdminAllow = readPrefixes(a, "stats_admin_allow")
	switch {
	case ad.StatsAdmin && !ad.Stats.IsValid():
		a.fail("stats_admin", nil, "needs stats: the page it acts from")
	case a.has("stats_admin_allow") && !ad.StatsAdmin:
		a.fail("stats_admin_allow", nil, "without stats_admin = true the page takes no action")
	case ad.StatsAdmin && len(ad.StatsAdminAllow) == 0:
		ad.StatsAdminAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	a.done()
	return ad
}

func readFrontends(root *table, backends []*session.Backend) []*session.Frontend {
	byName := backendNames{}
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
		f := readFrontend(t, bound, byName)
		checkDup(t, names, f.Name, "frontend")
		f.Backend = byName.resolve(t, f.BackendName)
		out = append(out, f)
	}
	return out
}

// backendNames finds a backend by name, for the frontends and their
// routes.
type backendNames map[string]*session.Backend

// resolve returns the backend named by key backend of t, reporting a name
// that no [[backend]] has; "" (absent or not a string, reported elsewhere)
// resolves to nil.
func (m backendNames) resolve(t *table, name string) *session.Backend {
	if name == "" {
		return nil
	}
	b := m[name]
	if b == nil {
		t.fail("backend", nil, "no backend named %q", name)
	}
	return b
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

func readFrontend(t *table, bound map[netip.AddrPort]string, byName backendNames) *session.Frontend {
	f := &session.Frontend{Name: t.name()}
	f.Binds = readBinds(t, bound)
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
	readRouting(t, f, byName)
	// With routes, backend is only the default for clients no route takes
	// and may be left out: they are then closed (no-route).
	if v, ok := t.get("backend"); ok && v != "" {
		f.BackendName = t.str("backend", "")
	} else if len(f.Routes) == 0 && !t.bad["route"] {
		t.failHere("backend", "missing backend")
	}
	t.done()
	return f
}

// DefaultInspectTimeout is frontend.inspect_timeout's default when a
// route looks at the client's first bytes (timeout_client if shorter).
const DefaultInspectTimeout = 5 * time.Second

// maxALPN is the longest ALPN protocol the ClientHello reader keeps; a
// longer one in a route could never match.
const maxALPN = clienthello.MaxProtocol

// readRouting reads the frontend's [[frontend.route]] list, in order
// (the first route a client matches picks its backend), and the keys
// that only mean something when routes look at the client's first bytes:
// inspect_timeout and on_bad_hello.
func readRouting(t *table, f *session.Frontend, byName backendNames) {
	tables := t.list("route")
	// A route whose conditions were reported lost some of them: what it
	// shadows or inspects is then unknown, and saying so would be noise.
	unsure := t.bad["route"]
	for _, rt := range tables {
		f.Routes = append(f.Routes, readRoute(rt, byName))
		unsure = unsure || ruleFailed(rt)
	}
	checkShadowed(t, tables, f.Routes)
	readInspectTimeout(t, f, unsure)
	readBadHello(t, f, unsure)
}

func readRoute(t *table, byName backendNames) *session.Route {
	r := &session.Route{}
	for i, s := range t.strs("sni") {
		p, err := route.Pattern(s)
		if err != nil {
			t.fail("sni", err, "sni[%d]: %v", i, err)
			continue
		}
		r.SNI = append(r.SNI, p)
	}
	for i, s := range t.strs("alpn") {
		switch {
		case s == "":
			t.fail("alpn", nil, "alpn[%d]: empty protocol name", i)
			continue
		case len(s) > maxALPN:
			t.fail("alpn", nil, "alpn[%d]: %q is %d bytes: the ClientHello reader keeps protocols of at most %d bytes, so it could never match", i, s, len(s), maxALPN)
			continue
		}
		r.ALPN = append(r.ALPN, s)
	}
	if s := t.str("protocol", ""); t.has("protocol") && !t.bad["protocol"] {
		p, err := route.ParseProtocol(s)
		if err != nil {
			t.fail("protocol", nil, "%v", err)
		}
		r.Protocol = p
	}
	hello := r.NeedsHello() || t.bad["sni"] || t.bad["alpn"]
	if hello && r.Protocol != route.Any && r.Protocol != route.TLS {
		t.fail("protocol", nil, "protocol %q can never match a route with sni or alpn (they are read from a TLS ClientHello): use \"tls\" or leave protocol out", r.Protocol)
	}
	r.Source = readPrefixes(t, "source")
	if v, ok := t.get("backend"); !ok || v == "" {
		t.failHere("backend", "missing backend")
	} else {
		r.BackendName = t.str("backend", "")
		r.Backend = byName.resolve(t, r.BackendName)
	}
	t.done()
	return r
}

// ruleFailed says whether a route's conditions were reported, so its
// Rule may lack some of them.
func ruleFailed(t *table) bool {
	return t.bad["sni"] || t.bad["alpn"] || t.bad["protocol"] || t.bad["source"]
}

// checkShadowed reports a route that an earlier one takes every client
// of: it could never match.
func checkShadowed(t *table, tables []*table, routes []*session.Route) {
	for j, rj := range routes {
		if ruleFailed(tables[j]) {
			continue
		}
		for i, ri := range routes[:j] {
			if !ruleFailed(tables[i]) && ri.Shadows(&rj.Rule) {
				t.pr.add(tables[j].at.key, t.at.label, nil, "route[%d] can never match: route[%d] (%s) takes every client it would", j, i, ri.Rule.String())
				break
			}
		}
	}
}

// readInspectTimeout reads frontend.inspect_timeout, which only routes
// looking at the client's first bytes use.
func readInspectTimeout(t *table, f *session.Frontend, unsure bool) {
	set := t.has("inspect_timeout")
	d := t.duration("inspect_timeout", min(DefaultInspectTimeout, f.TimeoutClient), true)
	switch {
	case !f.Inspects():
		if set && !unsure && !t.bad["inspect_timeout"] {
			t.fail("inspect_timeout", nil, "no route looks at the client's first bytes (sni, alpn or protocol): remove inspect_timeout")
		}
		return
	case d > f.TimeoutClient && !t.bad["timeout_client"]:
		t.fail("inspect_timeout", nil, "inspect_timeout %s is longer than timeout_client %s: the client would time out first", d, f.TimeoutClient)
	}
	f.InspectTimeout = d
}

// readBadHello reads frontend.on_bad_hello: what happens to a client
// whose ClientHello cannot be read, when a route needs it. "default":
// routes asking for sni or alpn do not match it; "close": it is closed.
func readBadHello(t *table, f *session.Frontend, unsure bool) {
	set := t.has("on_bad_hello")
	switch v := t.str("on_bad_hello", "default"); v {
	case "default":
	case "close":
		f.BadHelloClose = true
	default:
		t.fail("on_bad_hello", nil, "unknown value %q (want \"default\" or \"close\")", v)
	}
	if !f.NeedsHello() {
		if set && !unsure && !t.bad["on_bad_hello"] {
			t.fail("on_bad_hello", nil, "no route reads the ClientHello (sni or alpn): remove on_bad_hello")
		}
		f.BadHelloClose = false
	}
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
		OnDown:         readChoice(t, "on_down", session.OnDownShutdownSessions),
		OnUp:           readChoice(t, "on_up", session.OnUpShutdownBackupSessions),
		NoFailback:     !t.boolean("failback", true),
	}
	if b.OnUp != "" && b.NoFailback {
		t.fail("on_up", nil, "on_up = %q brings clients back to a primary, which failback = false keeps them from", b.OnUp)
	}
	agentAt := readHealth(t, b)
	initAddr := readInitAddr(t, DefaultInitAddr)
	slowStart := t.duration("slowstart", 0, false)
	names := map[string]string{}
	var tables []*table
	for _, st := range t.list("server") {
		s := readServer(st, b.Check != nil, b.Agent != nil, initAddr, slowStart)
		checkDup(st, names, s.Name, "server")
		b.Servers = append(b.Servers, s)
		tables = append(tables, st)
	}
	b.Servers = append(b.Servers, readTemplates(t, b.Check != nil, names)...)
	checkAgentPorts(agentAt, b)
	if t.has("init_addr") && !slices.ContainsFunc(b.Servers, func(s *session.Server) bool { return s.FQDN != "" && s.Template == nil }) {
		t.fail("init_addr", nil, "init_addr applies to servers named by DNS, and this backend has none (a template's slots start empty, filled by its first answer)")
	}
	if len(b.Servers) == 0 && !t.bad["server_template"] {
		t.failHere("server", "no servers (a [[backend.server]] or a [[backend.server_template]])")
	} else {
		checkBalancer(t, b)
		checkSlowStart(t, b, tables)
	}
	t.done()
	return b
}

// checkSlowStart refuses a slowstart that could do nothing: an algorithm
// that does not ramp weights (static-rr, source, first) ramps only
// maxconn, so a server there needs one. It is reported where it was
// set: on the server, or on the backend whose default it took.
func checkSlowStart(t *table, b *session.Backend, servers []*table) {
	if balance.Ramps(b.Balance) || t.bad["balance"] {
		return
	}
	for i, s := range b.Servers {
		if s.SlowStart <= 0 || s.MaxConn > 0 || servers[i].bad["slowstart"] {
			continue
		}
		why := fmt.Sprintf("balance = %q does not ramp weights, only maxconn", b.Balance)
		if servers[i].has("slowstart") {
			servers[i].fail("slowstart", nil, "slowstart would do nothing: %s, and server %s has no maxconn (set one, or remove slowstart)", why, s.Name)
		} else if !t.bad["slowstart"] {
			t.fail("slowstart", nil, "slowstart would do nothing for server %s: %s, and it has no maxconn (set one, or slowstart = \"0s\" on it)", s.Name, why)
			return
		}
	}
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
		views[i] = balance.Server{Name: s.Name, Addr: s.Address, Key: s.HashKey(), Weight: s.Weight, Backup: s.Backup, MaxConn: s.MaxConn}
	}
	if _, err := balance.New(b.Balance, views, nil); err != nil {
		t.fail("balance", err, "%v", err)
	}
}

// readServer reads one [[backend.server]]; initAddr and slowStart are
// its backend's, which it takes unless it sets its own.
func readServer(t *table, checked, agent bool, initAddr []string, slowStart time.Duration) *session.Server {
	s := &session.Server{Name: t.name(), Weight: 100}
	if v, ok := t.get("address"); !ok || v == "" {
		t.failHere("address", "missing address")
	} else if str := t.str("address", ""); str != "" {
		s.Address, s.FQDN = readServerAddr(t, str)
	}
	s.InitAddr = readInitAddr(t, initAddr)
	if s.FQDN == "" {
		if t.has("init_addr") {
			t.fail("init_addr", nil, "init_addr applies to a server named by DNS; this one's address is an IP")
		}
		s.InitAddr = nil
	}
	s.Weight = t.integer("weight", 100, 0, balance.MaxWeight)
	s.MaxConn = t.integer("maxconn", 0, 0, maxInt)
	s.Backup = t.boolean("backup", false)
	s.SlowStart = t.duration("slowstart", slowStart, false)
	readServerCheck(t, s, checked)
	readServerAgent(t, s, agent)
	t.done()
	return s
}

// named says whether some server of c is named by DNS.
func named(c *session.Config) bool {
	for _, b := range c.Backends {
		for _, s := range b.Servers {
			if s.FQDN != "" {
				return true
			}
		}
	}
	return false
}

// readChoice reads a key whose one value turns on what it names ("" is
// off).
func readChoice(t *table, k, on string) string {
	switch v := t.str(k, ""); v {
	case "", on:
		return v
	default:
		t.fail(k, nil, "unknown %s %q (want %q, or leave it out)", k, v, on)
	}
	return ""
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
