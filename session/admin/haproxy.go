package admin

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ringproxy/session"
)

// Version is what show info gives as Version and Build info; the
// program sets it (cmd/ringproxy's build version) before it opens the
// socket.
var Version = "dev"

// HAProxy's formats, as HAProxy 2.6 prints them: show stat's CSV and show
// info's "Key: value" lines. The lists below are those of HAProxy
// 2.6.12 (Debian's 2.6.12-1+deb12u4, built with OpenSSL, without QUIC or
// zlib): src/stats.c stat_fields and info_fields, in the order of
// include/haproxy/stats-t.h's ST_F_* and INF_* enums, with the stats
// modules that build registers after the "-" column. testdata/ holds
// what that HAProxy answered, and the tests hold these lists to it.
//
// A field gets a value only when ringproxy knows it; the rest stay
// empty, as HAProxy leaves the fields a proxy's mode lacks (every HTTP,
// compression, agent and module column here: ringproxy is TCP only and
// terminates no TLS).

// statFields is show stat's header, in order.
var statFields = [...]string{
	"pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot", "bin", "bout", "dreq",
	"dresp", "ereq", "econ", "eresp", "wretr", "wredis", "status", "weight", "act", "bck",
	"chkfail", "chkdown", "lastchg", "downtime", "qlimit", "pid", "iid", "sid", "throttle",
	"lbtot", "tracked", "type", "rate", "rate_lim", "rate_max", "check_status", "check_code",
	"check_duration", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx",
	"hrsp_other", "hanafail", "req_rate", "req_rate_max", "req_tot", "cli_abrt", "srv_abrt",
	"comp_in", "comp_out", "comp_byp", "comp_rsp", "lastsess", "last_chk", "last_agt",
	"qtime", "ctime", "rtime", "ttime", "agent_status", "agent_code", "agent_duration",
	"check_desc", "agent_desc", "check_rise", "check_fall", "check_health", "agent_rise",
	"agent_fall", "agent_health", "addr", "cookie", "mode", "algo", "conn_rate",
	"conn_rate_max", "conn_tot", "intercepted", "dcon", "dses", "wrew", "connect", "reuse",
	"cache_lookups", "cache_hits", "srv_icur", "src_ilim", "qtime_max", "ctime_max",
	"rtime_max", "ttime_max", "eint", "idle_conn_cur", "safe_conn_cur", "used_conn_cur",
	"need_conn_est", "uweight", "agg_server_status", "agg_server_check_status",
	"agg_check_status",
	// HAProxy's end of its static fields, then its stats modules' fields.
	"-", "ssl_sess", "ssl_reused_sess", "ssl_failed_handshake",
	"h2_headers_rcvd", "h2_data_rcvd", "h2_settings_rcvd", "h2_rst_stream_rcvd",
	"h2_goaway_rcvd", "h2_detected_conn_protocol_errors", "h2_detected_strm_protocol_errors",
	"h2_rst_stream_resp", "h2_goaway_resp", "h2_open_connections", "h2_backend_open_streams",
	"h2_total_connections", "h2_backend_total_streams", "h1_open_connections",
	"h1_open_streams", "h1_total_connections", "h1_total_streams", "h1_bytes_in",
	"h1_bytes_out", "h1_spliced_bytes_in", "h1_spliced_bytes_out",
}

// infoFields is every key show info may print, in order. HAProxy skips
// a key it has no value for (description unset, the zlib ones without
// zlib); so does ringproxy.
var infoFields = [...]string{
	"Name", "Version", "Release_date", "Nbthread", "Nbproc", "Process_num", "Pid", "Uptime",
	"Uptime_sec", "Memmax_MB", "PoolAlloc_MB", "PoolUsed_MB", "PoolFailed", "Ulimit-n",
	"Maxsock", "Maxconn", "Hard_maxconn", "CurrConns", "CumConns", "CumReq", "MaxSslConns",
	"CurrSslConns", "CumSslConns", "Maxpipes", "PipesUsed", "PipesFree", "ConnRate",
	"ConnRateLimit", "MaxConnRate", "SessRate", "SessRateLimit", "MaxSessRate", "SslRate",
	"SslRateLimit", "MaxSslRate", "SslFrontendKeyRate", "SslFrontendMaxKeyRate",
	"SslFrontendSessionReuse_pct", "SslBackendKeyRate", "SslBackendMaxKeyRate",
	"SslCacheLookups", "SslCacheMisses", "CompressBpsIn", "CompressBpsOut",
	"CompressBpsRateLim", "ZlibMemUsage", "MaxZlibMemUsage", "Tasks", "Run_queue", "Idle_pct",
	"node", "description", "Stopping", "Jobs", "Unstoppable Jobs", "Listeners", "ActivePeers",
	"ConnectedPeers", "DroppedLogs", "BusyPolling", "FailedResolutions", "TotalBytesOut",
	"TotalSplicdedBytesOut", "BytesOutRate", "DebugCommandsIssued", "CumRecvLogs",
	"Build info", "Memmax_bytes", "PoolAlloc_bytes", "PoolUsed_bytes", "Start_time_sec",
	"Tainted",
}

var statIndex = func() map[string]int {
	m := make(map[string]int, len(statFields))
	for i, f := range statFields {
		m[f] = i
	}
	return m
}()

// HAProxy's object types, show stat's type column and the bits of its
// type filter.
const (
	typeFrontend = 0
	typeBackend  = 1
	typeServer   = 2
)

// statRow is one CSV line being filled, a value per field of statFields.
type statRow struct {
	v    [len(statFields)]string
	iid  int
	typ  int
	sid  int
	name string // pxname, for the filter
}

func newRow(pxname, svname string, typ, iid, sid int) *statRow {
	r := &statRow{iid: iid, typ: typ, sid: sid, name: pxname}
	r.set("pxname", pxname)
	r.set("svname", svname)
	r.set("-", "-")
	r.set("pid", "1")
	r.set("iid", strconv.Itoa(iid))
	r.set("sid", strconv.Itoa(sid))
	r.set("type", strconv.Itoa(typ))
	r.set("mode", "tcp")
	return r
}

// set sets a field by its name; a name not in statFields is a bug.
func (r *statRow) set(field, value string) {
	i, ok := statIndex[field]
	if !ok {
		panic("admin: no show stat field " + field)
	}
	r.v[i] = value
}

func (r *statRow) num(field string, n int64) { r.set(field, strconv.FormatInt(n, 10)) }
func (r *statRow) u(field string, n uint64)  { r.set(field, strconv.FormatUint(n, 10)) }

// seconds sets a duration in whole seconds, as HAProxy gives downtime.
func (r *statRow) seconds(field string, d time.Duration) { r.num(field, int64(max(d, 0)/time.Second)) }

// age sets how many whole seconds before now t was (lastchg).
func (r *statRow) age(field string, now, t time.Time) { r.seconds(field, now.Sub(t)) }

// lastSession is lastsess: seconds since the last session, -1 for never.
func (r *statRow) lastSession(now, t time.Time) {
	if t.IsZero() {
		r.num("lastsess", -1)
		return
	}
	r.age("lastsess", now, t)
}

// rate sets a rate and its highest, in whole sessions per second as
// HAProxy's freq counters give them.
func (r *statRow) rate(cur, highest string, v session.Rate) {
	r.set(cur, rate(v.Cur))
	r.set(highest, rate(v.Max))
}

// line is the row as HAProxy prints it: every field followed by a comma.
func (r *statRow) line(b *strings.Builder) {
	for _, v := range r.v {
		csvField(b, v)
		b.WriteByte(',')
	}
	b.WriteByte('\n')
}

// csvField writes v as HAProxy's csv_enc does: quoted, its quotes
// doubled, when it holds a comma, a quote or a line break.
func csvField(b *strings.Builder, v string) {
	if !strings.ContainsAny(v, "\n\r,\"") {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	b.WriteString(strings.ReplaceAll(v, `"`, `""`))
	b.WriteByte('"')
}

func statHeader(b *strings.Builder) {
	b.WriteString("# ")
	for _, f := range statFields {
		b.WriteString(f)
		b.WriteByte(',')
	}
	b.WriteByte('\n')
}

// statFilter is show stat's optional {iid|proxy} type sid: -1 for any
// proxy or server, type a mask of 1 (frontends), 2 (backends) and 4
// (servers), -1 for all.
type statFilter struct {
	iid   int
	proxy string // by name instead of iid
	types int
	sid   int
}

func parseStatFilter(args []string) (statFilter, error) {
	f := statFilter{iid: -1, types: -1, sid: -1}
	if len(args) == 0 {
		return f, nil
	}
	if len(args) != 3 {
		return f, fmt.Errorf("want show stat, show stat human, or show stat IID|PROXY TYPE SID (-1 for all)")
	}
	if n, err := strconv.Atoi(args[0]); err == nil {
		f.iid = n
	} else {
		f.proxy = args[0]
	}
	var err error
	if f.types, err = strconv.Atoi(args[1]); err != nil {
		return f, fmt.Errorf("bad type %q: want a mask of 1 (frontends), 2 (backends), 4 (servers), or -1", args[1])
	}
	if f.sid, err = strconv.Atoi(args[2]); err != nil {
		return f, fmt.Errorf("bad server id %q", args[2])
	}
	return f, nil
}

func (f statFilter) keep(r *statRow) bool {
	if f.proxy != "" && r.name != f.proxy || f.proxy == "" && f.iid != -1 && r.iid != f.iid {
		return false
	}
	if f.types != -1 && f.types&(1<<r.typ) == 0 {
		return false
	}
	return r.typ != typeServer || f.sid == -1 || r.sid == f.sid
}

// haproxyStat is show stat: a FRONTEND row per frontend, then per backend
// its servers and its BACKEND row. Frontends and backends are proxies of
// their own, numbered (iid) from 1 in that order; servers from 1 in each
// backend.
func haproxyStat(s session.Snapshot, f statFilter) string {
	var b strings.Builder
	statHeader(&b)
	emit := func(r *statRow) {
		if f.keep(r) {
			r.line(&b)
		}
	}
	iid := 0
	for _, fe := range s.Frontends {
		iid++
		emit(frontendRow(fe, iid, s.Process.MaxConn))
	}
	for _, be := range s.Backends {
		iid++
		for i, sv := range be.Servers {
			emit(serverRow(be, sv, iid, i+1, s.Time))
		}
		emit(backendRow(be, iid, s.Time))
	}
	return b.String()
}

func frontendRow(fe session.FrontendStats, iid, globalMaxConn int) *statRow {
	r := newRow(fe.Name, "FRONTEND", typeFrontend, iid, 0)
	r.num("scur", fe.CurSessions)
	r.num("smax", fe.MaxSessions)
	slim := fe.MaxConn
	if slim == 0 {
		slim = globalMaxConn // the limit that applies to it, as HAProxy's default
	}
	r.num("slim", int64(slim))
	r.u("stot", fe.Sessions)
	r.u("bin", fe.BytesIn)
	r.u("bout", fe.BytesOut)
	r.set("status", frontendStatus(fe))
	r.rate("rate", "rate_max", fe.SessionRate)
	r.num("rate_lim", int64(fe.RateLimit))
	// Every connection accepted: the sessions started and those closed at
	// accept (deny, per_source_rate, maxsock, ...).
	r.rate("conn_rate", "conn_rate_max", fe.ConnRate)
	r.u("conn_tot", fe.Sessions+fe.Refused)
	return r
}

func serverRow(be session.BackendStats, sv session.ServerStats, iid, sid int, now time.Time) *statRow {
	r := newRow(be.Name, sv.Name, typeServer, iid, sid)
	r.set("qcur", "0") // sessions queue on the backend, never on a server
	r.set("qmax", "0")
	r.num("scur", sv.CurSessions)
	r.num("smax", sv.MaxSessions)
	if sv.MaxConn > 0 {
		r.num("slim", int64(sv.MaxConn))
	}
	r.u("stot", sv.Sessions)
	r.u("bin", sv.BytesIn)
	r.u("bout", sv.BytesOut)
	r.u("econ", sv.ConnFailures)
	r.u("wretr", sv.Retries)
	r.u("wredis", sv.Redispatches)
	r.set("status", serverStatus(sv))
	r.age("lastchg", now, sv.LastChange)
	r.rate("rate", "rate_max", sv.SessionRate)
	r.lastSession(now, sv.LastSession)
	r.num("weight", int64(sv.Weight)) // effective: a share of uweight while it warms up
	r.num("uweight", int64(sv.UserWeight))
	if ss := sv.SlowStart; ss != nil && sv.TakesSessions() {
		r.num("throttle", int64(ss.Throttle)) // HAProxy's, while starting and not draining
	}
	if sv.Backup {
		r.set("act", "0")
		r.set("bck", "1")
	} else {
		r.set("act", "1")
		r.set("bck", "0")
	}
	r.set("addr", sv.Addr) // HAProxy shows it on an admin-level socket
	if c := sv.Check; c != nil {
		r.u("chkfail", c.CheckFailures)
		r.u("chkdown", downTransitions(sv))
		r.seconds("downtime", time.Duration(sv.Downtime))
		res := lastCheck(be.Name, sv)
		r.set("check_status", res.status)
		r.set("check_desc", res.desc)
		r.set("last_chk", res.detail)
		if res.code != 0 {
			r.num("check_code", int64(res.code))
		}
		if res.status != "INI" {
			r.num("check_duration", c.LastDuration.Milliseconds())
		}
		r.num("check_rise", int64(c.Rise))
		r.num("check_fall", int64(c.Fall))
		r.num("check_health", int64(checkHealth(sv)))
	}
	if o := sv.Observe; o != nil {
		r.u("hanafail", o.Failures)
	}
	if a := sv.Agent; a != nil {
		agentColumns(r, a)
	}
	return r
}

// agentColumns fills the agent's columns as HAProxy 2.6 does: its status
// and that status's description, the duration, code and last_agt once it
// answered, and its rise, fall and health (1 and 1: an agent's word acts
// at once).
func agentColumns(r *statRow, a *session.AgentStats) {
	r.set("agent_status", a.Status)
	r.set("agent_desc", agentStatusDesc(a.Status))
	r.set("last_agt", a.Desc)
	if a.Status != "INI" {
		r.num("agent_duration", a.LastDuration.Milliseconds())
	}
	if a.Status == "L7OK" || a.Status == "L7STS" {
		r.set("agent_code", "0") // HAProxy gives the code of a layer 7 status; an agent has none
	}
	r.set("agent_rise", "1")
	r.set("agent_fall", "1")
	health := "0"
	if a.Up {
		health = "1"
	}
	r.set("agent_health", health)
}

func agentStatusDesc(status string) string {
	if status == "CHECKED" {
		return "No status change"
	}
	return checkDesc[status]
}

func backendRow(be session.BackendStats, iid int, now time.Time) *statRow {
	r := newRow(be.Name, "BACKEND", typeBackend, iid, 0)
	t := be.Totals()
	act, bck, wact, wbck, uact, ubck := 0, 0, 0, 0, 0, 0
	for _, sv := range be.Servers {
		if !usable(sv) {
			continue
		}
		if sv.Backup {
			bck++
			wbck += sv.Weight
			ubck += sv.UserWeight
		} else {
			act++
			wact += sv.Weight
			uact += sv.UserWeight
		}
	}
	// HAProxy's backend weighs its active servers, or its backups when no
	// active one is usable; it is UP while that weight is above 0. weight
	// sums effective weights (warming servers count their share), uweight
	// the servers' own.
	weight, uweight := wact, uact
	if act == 0 {
		weight, uweight = wbck, ubck
	}
	r.num("qcur", be.CurQueue)
	r.num("qmax", be.MaxQueue)
	r.num("scur", t.CurSessions) // on a server (connecting or connected) or queued for one
	r.num("smax", be.MaxSessions)
	r.u("stot", t.Sessions)
	r.u("bin", t.BytesIn)
	r.u("bout", t.BytesOut)
	r.u("econ", t.ConnFailures)
	r.u("wretr", t.Retries)
	r.u("wredis", t.Redispatches)
	r.u("chkdown", be.DownTransitions)
	r.age("lastchg", now, be.LastChange)
	if len(be.Servers) > 0 {
		r.seconds("downtime", time.Duration(be.Downtime))
	}
	r.rate("rate", "rate_max", be.SessionRate)
	r.lastSession(now, be.LastSession)
	if weight > 0 || len(be.Servers) == 0 {
		r.set("status", "UP")
	} else {
		r.set("status", "DOWN")
	}
	r.num("weight", int64(weight))
	r.num("uweight", int64(uweight))
	r.num("act", int64(act))
	r.num("bck", int64(bck))
	r.set("algo", be.Balance)
	// Gauges HAProxy's CSV always gives as 0 (Prometheus has their values).
	r.set("agg_server_status", "0")
	r.set("agg_server_check_status", "0")
	r.set("agg_check_status", "0")
	return r
}

// frontendStatus is OPEN, or PAUSED after disable frontend, as HAProxy.
func frontendStatus(fe session.FrontendStats) string {
	if fe.Disabled {
		return "PAUSED"
	}
	return "OPEN"
}

// usable says whether sv takes new sessions, as HAProxy counts act and
// bck: UP, not in maintenance, weight above 0.
func usable(sv session.ServerStats) bool { return sv.TakesSessions() && sv.Weight > 0 }

// serverStatus is a server's status as HAProxy spells it: MAINT, "no
// check" for a server that runs unchecked, "UP 2/3" for a checked one
// that failed a check and goes DOWN after 2 more failures, "DOWN 1/2"
// for one that passed 1 of the 2 it needs to go UP. A server with an
// agent says so as HAProxy does: "DRAIN (agent)" for any drained one,
// "DOWN (agent)" for one its agent took down.
func serverStatus(sv session.ServerStats) string {
	c, a := sv.Check, sv.Agent
	switch {
	case sv.Admin == "maint":
		return "MAINT"
	case sv.Resolution != nil && sv.Resolution.Maint:
		return "MAINT (resolution)"
	case sv.Admin == "drain" && sv.Up && a != nil:
		return "DRAIN (agent)"
	case sv.Admin == "drain" && sv.Up:
		return "DRAIN"
	case !sv.Up && a != nil && !a.Up:
		return "DOWN (agent)"
	case c == nil && sv.Up:
		return "no check"
	case c == nil:
		return "DOWN"
	case sv.Up:
		if failed := max(int64(c.Failures), c.PassiveFailures); failed > 0 && failed < int64(c.Fall) {
			return fmt.Sprintf("UP %d/%d", int64(c.Fall)-failed, c.Fall)
		}
		return "UP"
	case c.Successes > 0 && c.Successes < c.Rise:
		return fmt.Sprintf("DOWN %d/%d", c.Successes, c.Rise)
	}
	return "DOWN"
}

// checkHealth is HAProxy's check_health: 0 to rise-1 while DOWN (the
// successes towards UP), rise to rise+fall-1 while UP (the failures
// still allowed, plus rise).
func checkHealth(sv session.ServerStats) int {
	c := sv.Check
	if sv.Up {
		failed := int(min(max(int64(c.Failures), c.PassiveFailures), int64(c.Fall-1)))
		return c.Rise + c.Fall - 1 - failed
	}
	return min(c.Successes, c.Rise-1)
}

// downTransitions counts a checked server's UP to DOWN changes: its
// changes alternate, so whatever state it started in, half of them, the
// odd one out counted when it is DOWN now.
func downTransitions(sv session.ServerStats) uint64 {
	t := sv.Check.Transitions
	if !sv.Up {
		return (t + 1) / 2
	}
	return t / 2
}

// checkResult is a server's last check in HAProxy's words.
type checkResult struct {
	status string // check_status: L4OK, L4CON, L7STS, ...
	desc   string // check_desc: HAProxy's text for the status
	detail string // last_chk: what went wrong, as ringproxy's checker says it
	code   int    // check_code: the HTTP status, 0 if none
}

var checkDesc = map[string]string{
	"UNK":    "Unknown",
	"INI":    "Initializing",
	"L4OK":   "Layer4 check passed",
	"L4TOUT": "Layer4 timeout",
	"L4CON":  "Layer4 connection problem",
	"L7TOUT": "Layer7 timeout",
	"L7RSP":  "Layer7 invalid response",
	"L7OK":   "Layer7 check passed",
	"L7STS":  "Layer7 wrong status",
	"HANA":   "Health analyze",
}

func result(status, detail string, code int) checkResult {
	return checkResult{status: status, desc: checkDesc[status], detail: detail, code: code}
}

// lastCheck maps the server's last finished check to HAProxy's check
// status: a tcp check that connects is L4OK, an http or expect check
// that passes L7OK; a failure is told by the phase the checker names
// (session/health/check.go): the connect (L4CON, L4TOUT) or what came
// after (L7TOUT, L7STS, L7RSP, or L4CON for a socket error). A failure
// whose reason was since overwritten (a skipped check, live traffic)
// is UNK.
func lastCheck(backend string, sv session.ServerStats) checkResult {
	c := sv.Check
	switch {
	case c.Hana:
		_, why, _ := strings.Cut(c.LastError, ": ")
		return result("HANA", why, 0)
	case c.LastCheck.IsZero():
		return result("INI", "", 0)
	case c.LastOK && c.Kind == "tcp":
		return result("L4OK", "", 0)
	case c.LastOK && c.Kind == "http":
		return result("L7OK", "", c.ExpectStatus)
	case c.LastOK:
		return result("L7OK", "", 0)
	}
	prefix := "check " + backend + "/" + sv.Name + " " + sv.Addr + ": "
	reason, ok := strings.CutPrefix(c.LastError, prefix)
	if !ok || !c.LastErrorAt.Equal(c.LastCheck.Add(c.LastDuration)) {
		return result("UNK", "", 0)
	}
	return failedCheck(reason)
}

// failedCheck classifies a failed check's reason, "PHASE: WHAT".
func failedCheck(reason string) checkResult {
	phase, what, _ := strings.Cut(reason, ": ")
	phase = stepPhase(phase, what)
	switch phase {
	case "connect":
		if strings.HasPrefix(what, "timeout after ") {
			return result("L4TOUT", reason, 0)
		}
		return result("L4CON", reason, 0)
	case "send", "read status line", "read headers", "read":
		switch {
		case strings.HasPrefix(what, "timeout after "):
			return result("L7TOUT", reason, 0)
		case strings.HasPrefix(what, "connection closed by server"):
			return result("L7RSP", reason, 0) // no answer, or not the one wanted
		}
		return result("L4CON", reason, 0) // a socket error once connected
	case "http", "expect":
		return result("L7RSP", reason, 0)
	}
	var status, want int
	if n, _ := fmt.Sscanf(reason, "http status %d, want %d", &status, &want); n == 2 {
		return result("L7STS", reason, status)
	}
	return result("UNK", reason, 0)
}

// stepPhase maps the phase of a tcp check's step, "step 3 send" or
// "step 3 expect", to the phase it fails like: a send's, a read's, or
// an expect's when the answer filled the buffer without a match.
func stepPhase(phase, what string) string {
	f := strings.Fields(phase)
	if len(f) != 3 || f[0] != "step" {
		return phase
	}
	switch {
	case f[2] == "send":
		return "send"
	case f[2] == "expect" && strings.HasPrefix(what, "no match "):
		return "expect"
	case f[2] == "expect":
		return "read"
	}
	return phase
}

// haproxyInfo is show info: HAProxy's keys in HAProxy's order, each with
// ringproxy's value; a key ringproxy has no value for is left out, as
// HAProxy leaves out the keys it has none for. A feature ringproxy lacks
// (TLS termination, compression, peers, name resolution) reads 0, as it
// does on a HAProxy that does not use it. listeners counts the control
// listeners besides the frontends' binds.
func haproxyInfo(s session.Snapshot, listeners int) string {
	ps := s.Process
	up := int64(s.Uptime)
	var accepted uint64 // every connection the kernel handed over
	for _, n := range ps.AcceptOutcomes {
		accepted += n
	}
	for _, f := range s.Frontends {
		listeners += len(f.Binds)
	}
	node, _ := os.Hostname()
	stopping, busyPolling := 0, 0
	if ps.Stopping {
		stopping = 1
	}
	if ps.BusyPolling {
		busyPolling = 1
	}
	v := map[string]string{
		"Name":           "ringproxy",
		"Version":        Version,
		"Nbthread":       strconv.Itoa(ps.Workers),
		"Nbproc":         "1",
		"Process_num":    "1",
		"Pid":            strconv.Itoa(os.Getpid()),
		"Uptime":         fmt.Sprintf("%dd %dh%02dm%02ds", up/86400, up%86400/3600, up%3600/60, up%60),
		"Uptime_sec":     strconv.FormatInt(up, 10),
		"Memmax_MB":      "0", // no memory limit
		"Maxconn":        strconv.Itoa(ps.MaxConn),
		"Hard_maxconn":   strconv.Itoa(ps.MaxConn),
		"CurrConns":      strconv.FormatInt(ps.CurConns, 10),
		"CumConns":       strconv.FormatUint(accepted, 10),
		"CumReq":         strconv.FormatUint(ps.Accepted, 10), // a TCP session is one stream
		"Maxpipes":       strconv.FormatInt(ps.MaxPipes, 10),
		"PipesUsed":      strconv.FormatInt(ps.Pipes, 10),
		"PipesFree":      "0", // a pipe is closed with its stream, never pooled
		"ConnRate":       rate(ps.ConnRate.Cur),
		"ConnRateLimit":  "0",
		"MaxConnRate":    rate(ps.ConnRate.Max),
		"SessRate":       rate(ps.SessionRate.Cur),
		"SessRateLimit":  "0",
		"MaxSessRate":    rate(ps.SessionRate.Max),
		"node":           node,
		"Stopping":       strconv.Itoa(stopping),
		"BusyPolling":    strconv.Itoa(busyPolling),
		"Listeners":      strconv.Itoa(listeners),
		"DroppedLogs":    strconv.FormatUint(ps.LogDropped, 10),
		"TotalBytesOut":  strconv.FormatUint(ps.BytesIn+ps.BytesOut, 10), // what was forwarded, both ways
		"Build info":     Version,
		"Memmax_bytes":   "0",
		"Start_time_sec": strconv.FormatInt(s.Time.Add(-time.Duration(s.Uptime*float64(time.Second))).Unix(), 10),
		"Tainted":        "0",
	}
	for _, k := range []string{"MaxSslConns", "CurrSslConns", "CumSslConns", "SslRate", "SslRateLimit", "MaxSslRate",
		"SslFrontendKeyRate", "SslFrontendMaxKeyRate", "SslFrontendSessionReuse_pct", "SslBackendKeyRate",
		"SslBackendMaxKeyRate", "SslCacheLookups", "SslCacheMisses", "CompressBpsIn", "CompressBpsOut",
		"CompressBpsRateLim", "Unstoppable Jobs", "ActivePeers", "ConnectedPeers",
		"FailedResolutions", "DebugCommandsIssued", "CumRecvLogs"} {
		v[k] = "0"
	}
	if n, ok := nofile(); ok {
		v["Ulimit-n"] = strconv.FormatUint(n, 10)
	}
	if ps.MaxSock > 0 {
		v["Maxsock"] = strconv.Itoa(ps.MaxSock)
	}
	var b strings.Builder
	for _, k := range infoFields {
		if val, ok := v[k]; ok {
			fmt.Fprintf(&b, "%s: %s\n", k, val)
		}
	}
	return b.String()
}

// rate is a rate in whole sessions (or connections) per second.
func rate(v float64) string { return strconv.FormatInt(int64(math.Round(v)), 10) }

// nofile is the process's fd limit (RLIMIT_NOFILE), as Ulimit-n.
func nofile() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return r.Cur, true
}
