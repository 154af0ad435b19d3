package config

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"ringproxy/session"
	"ringproxy/session/balance"
	"ringproxy/session/health"
)

// Summary renders c for `ringproxy check`: what the proxy would run with
// once defaults are applied, so an operator can confirm it at a glance.
func Summary(c *session.Config) string {
	var b strings.Builder
	g := c.Global
	maxconn := fmt.Sprint(g.MaxConn)
	if g.MaxConnAuto {
		maxconn += " (default; lowered at start if the fd limit is too low)"
	}
	fmt.Fprintf(&b, "global: engine %s, %d workers, maxconn %s, maxsock %s, maxaccept %d\n",
		g.Engine, g.Workers, maxconn, orAuto(g.MaxSock, "from RLIMIT_NOFILE"), g.MaxAccept)
	splice := "auto"
	if !g.Splice {
		splice = "off"
	}
	hardStop := "none"
	if g.HardStopAfter > 0 {
		hardStop = g.HardStopAfter.String()
	}
	fmt.Fprintf(&b, "        bufsize %s, buffers %s, grace %s, hard_stop_after %s, splice %s, batch_wait %s, busy_poll %s\n",
		formatSize(int64(g.BufSize)), orAuto(g.Buffers, "auto"), g.Grace, hardStop, splice, g.BatchWait, g.BusyPoll)
	if g.ReuseportShare {
		b.WriteString("        reuseport_share on: binds beside another process listening on an address, sharing its clients\n")
	} else {
		b.WriteString("        reuseport_share off: an address another process listens on is refused\n")
	}
	if g.StateFile != "" {
		fmt.Fprintf(&b, "        state_file %s: servers' admin states, weights and UP/DOWN written on change, read at start and reload\n", g.StateFile)
	} else {
		b.WriteString("        state_file none: a restart starts every server from the config (a reload keeps their state)\n")
	}
	writeAdmin(&b, c.Admin)
	writeLog(&b, c.Log)
	writeResolvers(&b, c)
	for _, f := range c.Frontends {
		writeFrontend(&b, f)
	}
	for _, be := range c.Backends {
		writeBackend(&b, be)
	}
	return b.String()
}

// writeAdmin says where the control endpoints listen.
func writeAdmin(b *strings.Builder, a session.Admin) {
	stats := "no stats listener"
	if a.Stats.IsValid() {
		stats = fmt.Sprintf("stats http://%s/ (/, /metrics, /stats.json), read-only", a.Stats)
	}
	if a.StatsAdmin {
		allow := make([]string, len(a.StatsAdminAllow))
		for i, p := range a.StatsAdminAllow {
			allow[i] = p.String()
		}
		stats = fmt.Sprintf("stats http://%s/ (/, /metrics, /stats.json), its buttons set server state for %s", a.Stats, strings.Join(allow, ", "))
	}
	socket := "no admin socket"
	if a.Socket != "" {
		socket = fmt.Sprintf("socket %s mode %04o", a.Socket, a.SocketMode)
	}
	fmt.Fprintf(b, "admin: %s; %s\n", stats, socket)
}

func writeLog(b *strings.Builder, l session.Log) {
	fmt.Fprintf(b, "log: level %s to stderr, access %s", l.Level, onOff(l.Access))
	if l.Access {
		target := l.Target
		if target == "syslog" {
			target = "syslog " + session.SyslogPath + " (facility daemon)"
		}
		fmt.Fprintf(b, " to %s, format %s", target, l.Format)
	}
	fmt.Fprintln(b)
}

func writeFrontend(b *strings.Builder, f *session.Frontend) {
	binds := make([]string, len(f.Binds))
	for i, a := range f.Binds {
		binds[i] = a.String()
	}
	backend := f.BackendName
	switch {
	case f.Backend == nil:
		backend = "none: unmatched clients are closed (no-route)"
	case len(f.Routes) > 0:
		backend += " when no route matches"
	}
	fmt.Fprintf(b, "frontend %s: bind %s -> backend %s\n", f.Name, strings.Join(binds, ", "), backend)
	fmt.Fprintf(b, "    maxconn %s, timeout_client %s, tcp_nodelay %s, keepalive %s, nolinger %s\n",
		orAuto(f.MaxConn, "global only"), f.TimeoutClient, onOff(f.TCPNoDelay), onOff(f.KeepAlive), onOff(f.NoLinger))
	proxy := "accept_proxy off"
	if f.AcceptProxy {
		proxy = "accept_proxy on (a PROXY v1/v2 header first; ACLs and logs see its source)"
	}
	fmt.Fprintf(b, "    %s, rate_limit %s, per_source_rate %s\n", proxy, perSecond(f.RateLimit), perSecond(f.PerSourceRate))
	fmt.Fprintf(b, "    sources: allow %s; deny %s\n", prefixes(f.Allow, "all"), prefixes(f.Deny, "none"))
	if f.Inspects() {
		fmt.Fprintf(b, "    inspect_timeout %s", f.InspectTimeout)
		if f.NeedsHello() {
			badHello := "default"
			if f.BadHelloClose {
				badHello = "close"
			}
			fmt.Fprintf(b, ", on_bad_hello %s", badHello)
		}
		fmt.Fprintln(b)
	}
	for i, r := range f.Routes {
		fmt.Fprintf(b, "    route %d: %s -> %s\n", i+1, r.Rule.String(), r.BackendName)
	}
}

func writeBackend(b *strings.Builder, be *session.Backend) {
	fmt.Fprintf(b, "backend %s: balance %s, %s", be.Name, be.Balance, plural(len(be.Servers), "server"))
	if n := backups(be); n > 0 {
		fmt.Fprintf(b, " (%d backup, used only when no primary is usable)", n)
	}
	fmt.Fprintln(b)
	sendProxy := be.SendProxy
	if sendProxy == "" {
		sendProxy = "off"
	}
	fmt.Fprintf(b, "    timeout connect %s, server %s, tunnel %s; retries %d, redispatch %s, send_proxy %s\n",
		be.TimeoutConnect, be.TimeoutServer, durOrOff(be.TimeoutTunnel), be.Retries, onOff(be.Redispatch), sendProxy)
	if be.TimeoutQueue > 0 {
		fmt.Fprintf(b, "    timeout queue %s\n", be.TimeoutQueue)
	}
	writeCheck(b, be)
	writeFailover(b, be)
	for _, s := range be.Servers {
		if t := s.Template; t != nil {
			if s.Name == t.Name+"1" {
				writeTemplate(b, s)
			}
			continue
		}
		fmt.Fprintf(b, "    server %s %s weight %d", s.Name, serverAddr(s), s.Weight)
		if s.MaxConn > 0 {
			fmt.Fprintf(b, " maxconn %d", s.MaxConn)
		}
		if s.Backup {
			b.WriteString(" backup")
		}
		if s.SlowStart > 0 {
			fmt.Fprintf(b, " slowstart %s (%s)", s.SlowStart, rampsWhat(be, s))
		}
		fmt.Fprintln(b)
	}
}

// writeResolvers says how server names are resolved, and which.
func writeResolvers(b *strings.Builder, c *session.Config) {
	r := c.Resolvers
	if r == nil {
		return
	}
	ns := "from " + r.ResolvConf
	if len(r.Nameservers) > 0 {
		list := make([]string, len(r.Nameservers))
		for i, a := range r.Nameservers {
			list[i] = a.String()
		}
		ns = strings.Join(list, ", ")
	}
	fmt.Fprintf(b, "resolvers: nameservers %s; timeout %s, retries %d, accepted_payload_size %d\n",
		ns, r.Timeout, r.Retries+1, r.PayloadSize)
	fmt.Fprintf(b, "    re-resolved on their TTL within %s..%s; a failing name keeps its last answer %s (hold_valid), an NXDOMAIN %s (hold_nx), then its server is out\n",
		r.TTLMin, r.TTLMax, r.HoldValid, r.HoldNX)
	var names []string
	for _, be := range c.Backends {
		for _, s := range be.Servers {
			switch t := s.Template; {
			case t != nil && s.Name == t.Name+"1":
				names = append(names, fmt.Sprintf("%s/%s1..%d %s", be.Name, t.Name, t.Count, t.FQDN))
			case t == nil && s.FQDN != "":
				names = append(names, be.Name+"/"+s.Name+" "+s.FQDN)
			}
		}
	}
	if len(names) == 0 {
		b.WriteString("    unused: no server is named by DNS\n")
		return
	}
	fmt.Fprintf(b, "    names: %s\n", strings.Join(names, ", "))
}

// writeTemplate describes the template first, a slot of it, stands for.
func writeTemplate(b *strings.Builder, first *session.Server) {
	t := first.Template
	what := fmt.Sprintf("%s:%d (the addresses of the name)", t.FQDN, t.Port)
	weight := fmt.Sprintf(" weight %d", first.Weight)
	if t.SRV {
		what, weight = t.FQDN+" (SRV: targets, ports, weights)", ""
	}
	fmt.Fprintf(b, "    server_template %s1..%s%d from %s%s", t.Name, t.Name, t.Count, what, weight)
	if first.MaxConn > 0 {
		fmt.Fprintf(b, " maxconn %d", first.MaxConn)
	}
	if first.Backup {
		b.WriteString(" backup")
	}
	b.WriteString("; unfilled slots in maintenance\n")
}

// serverAddr is s's address as configured: a name says so, with its
// init_addr.
func serverAddr(s *session.Server) string {
	if s.FQDN == "" {
		return s.Address.String()
	}
	return fmt.Sprintf("%s:%d (DNS; init_addr %s)", s.FQDN, s.Address.Port(), strings.Join(s.InitAddr, ","))
}

// checkAddr is where s's checks connect; a named server's own IP is its
// name's.
func checkAddr(c *session.Check, s *session.Server) string {
	if s.FQDN == "" || s.CheckAddress.IsValid() || c.Address.IsValid() {
		return session.CheckAddr(c, s).String()
	}
	return fmt.Sprintf("%s:%d", s.FQDN, session.CheckAddr(c, s).Port())
}

// rampsWhat says what a server's slow start ramps when it comes back UP.
func rampsWhat(be *session.Backend, s *session.Server) string {
	switch {
	case !balance.Ramps(be.Balance):
		return "ramps maxconn from 1 when it comes back UP"
	case s.MaxConn > 0:
		return "ramps weight from 1/16 and maxconn from 1 when it comes back UP"
	}
	return "ramps weight from 1/16 when it comes back UP"
}

// writeFailover says what happens to sessions when a server goes or
// comes back.
func writeFailover(b *strings.Builder, be *session.Backend) {
	down, up, failback := "sessions go on", "off", "on"
	if be.OnDown != "" {
		down = "its sessions are closed"
	}
	if be.OnUp != "" {
		up = "the backups' sessions are closed"
	}
	if be.NoFailback {
		failback = "off: new sessions stay on the server that took the last one while it is usable"
	}
	fmt.Fprintf(b, "    a server going DOWN or into maint: %s; a primary coming UP: %s; failback %s\n", down, up, failback)
}

// writeCheck says how the servers are checked: where, what is sent,
// what must come back, and how often.
func writeCheck(b *strings.Builder, be *session.Backend) {
	defer writeObserve(b, be) // deferred calls run last first: the agent, then observe
	defer writeAgent(b, be)
	c := be.Check
	if c == nil {
		switch {
		case be.Agent != nil:
			b.WriteString("    check none but the agent: a server is UP until its agent says down\n")
		case be.Observe != nil:
			b.WriteString("    check none: every server counts as UP but while observe holds it DOWN\n")
		default:
			b.WriteString("    check none: every server counts as UP\n")
		}
		return
	}
	var probe string
	switch c.Kind {
	case "http":
		host := "the address checked"
		if c.Host != "" {
			host = c.Host
		}
		probe = fmt.Sprintf("GET %s (Host: %s), expect status %d", c.Path, host, c.ExpectStatus)
	case "expect":
		probe = fmt.Sprintf("send %s, expect %s", strconv.Quote(c.Send), strconv.Quote(c.Expect))
	case "tcp":
		probe = "connect"
		if len(c.Steps) > 0 {
			probe = "connect, then " + plural(len(c.Steps), "step")
		}
	}
	fmt.Fprintf(b, "    check %s%s: %s; every %s, timeout %s, rise %d, fall %d\n",
		c.Kind, checkEndpoint(c.Address, c.Port), probe, c.Interval, c.Timeout, c.Rise, c.Fall)
	for i, st := range c.Steps {
		fmt.Fprintf(b, "      step %d: %s", i+1, stepSummary(st))
		if st.Timeout > 0 {
			fmt.Fprintf(b, " within %s", st.Timeout)
		}
		fmt.Fprintln(b)
	}
	for _, s := range be.Servers {
		if s.CheckAddress.IsValid() || s.CheckPort != 0 {
			fmt.Fprintf(b, "    check of %s at %s\n", s.Name, checkAddr(c, s))
		}
	}
}

// checkEndpoint says where a check connects when not to the server's
// own address: " at port 8008", " at 10.0.0.5", " at 10.0.0.5:8008".
func checkEndpoint(addr netip.Addr, port uint16) string {
	switch {
	case addr.IsValid() && port != 0:
		return " at " + netip.AddrPortFrom(addr, port).String()
	case addr.IsValid():
		return " at " + addr.String()
	case port != 0:
		return fmt.Sprintf(" at port %d", port)
	}
	return ""
}

// stepSummary is a step in the config's words: its key and its value.
func stepSummary(st health.Step) string {
	switch {
	case st.Action == health.ExpectRegexp:
		return "expect_regex " + strconv.Quote(st.Regexp.String())
	case st.Hex:
		key := "expect_hex"
		if st.Action == health.SendBytes {
			key = "send_hex"
		}
		return key + " " + groupedHex(st.Data)
	case st.Action == health.SendBytes:
		return "send " + strconv.Quote(string(st.Data))
	}
	return "expect " + strconv.Quote(string(st.Data))
}

// groupedHex writes b in hex as send_hex reads it, in groups of four
// bytes: "00000008 04d2162f".
func groupedHex(b []byte) string {
	var s strings.Builder
	for i := 0; i < len(b); i += 4 {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(hex.EncodeToString(b[i:min(i+4, len(b))]))
	}
	return s.String()
}

func backups(be *session.Backend) int {
	n := 0
	for _, s := range be.Servers {
		if s.Backup {
			n++
		}
	}
	return n
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func perSecond(n int) string {
	if n == 0 {
		return "off"
	}
	return fmt.Sprintf("%d/s", n)
}

func prefixes(ps []netip.Prefix, none string) string {
	if len(ps) == 0 {
		return none
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ", ")
}

func orAuto(n int, zero string) string {
	if n == 0 {
		return zero
	}
	return fmt.Sprint(n)
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

func durOrOff(d time.Duration) string {
	if d == 0 {
		return "off"
	}
	return d.String()
}

// writeAgent says where the agents are asked, how often and what they
// are sent.
func writeAgent(b *strings.Builder, be *session.Backend) {
	a := be.Agent
	if a == nil {
		return
	}
	send := "nothing"
	if a.Send != "" {
		send = strconv.Quote(a.Send)
	}
	fmt.Fprintf(b, "    agent%s: send %s, read one line (up, down, ready, drain, maint, N%%, maxconn:N); every %s, timeout %s\n",
		checkEndpoint(a.Address, a.Port), send, a.Interval, a.Timeout)
	for _, s := range be.Servers {
		if s.AgentAddress.IsValid() || s.AgentPort != 0 {
			fmt.Fprintf(b, "    agent of %s at %s\n", s.Name, session.AgentAddr(a, s))
		}
	}
}

// writeObserve says what connect failures on live traffic do.
func writeObserve(b *strings.Builder, be *session.Backend) {
	o := be.Observe
	if o == nil {
		return
	}
	if be.Check == nil {
		fmt.Fprintf(b, "    observe layer4: %d consecutive connect failures mark a server down for %s (observe_downtime)\n", o.ErrorLimit, o.Downtime)
		return
	}
	fmt.Fprintf(b, "    observe layer4: %d consecutive connect failures: on_error %s\n", o.ErrorLimit, o.OnError)
}
