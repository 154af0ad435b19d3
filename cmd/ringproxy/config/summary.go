package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"ringproxy/session"
	"ringproxy/session/route"
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
	fmt.Fprintf(&b, "        bufsize %s, buffers %s, grace %s, hard_stop_after %s, splice %s, batch_wait %s\n",
		formatSize(int64(g.BufSize)), orAuto(g.Buffers, "auto"), g.Grace, hardStop, splice, g.BatchWait)
	fmt.Fprintf(&b, "log: level %s, access %s\n", c.Log.Level, onOff(c.Log.Access))
	for _, f := range c.Frontends {
		writeFrontend(&b, f)
	}
	for _, be := range c.Backends {
		writeBackend(&b, be)
	}
	return b.String()
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
		fmt.Fprintf(b, "    route %d: %s -> %s\n", i+1, describeRule(&r.Rule), r.BackendName)
	}
}

// describeRule lists a route's conditions ("sni a.example.com; alpn h2"),
// "any" when it has none.
func describeRule(r *route.Rule) string {
	var parts []string
	if len(r.SNI) > 0 {
		parts = append(parts, "sni "+strings.Join(r.SNI, ", "))
	}
	if len(r.ALPN) > 0 {
		alpn := make([]string, len(r.ALPN))
		for i, a := range r.ALPN {
			alpn[i] = plainOrQuoted(a)
		}
		parts = append(parts, "alpn "+strings.Join(alpn, ", "))
	}
	if r.Protocol != route.Any {
		parts = append(parts, "protocol "+r.Protocol.String())
	}
	if len(r.Source) > 0 {
		src := make([]string, len(r.Source))
		for i, p := range r.Source {
			src[i] = p.String()
		}
		parts = append(parts, "source "+strings.Join(src, ", "))
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, "; ")
}

func writeBackend(b *strings.Builder, be *session.Backend) {
	fmt.Fprintf(b, "backend %s: balance %s, %d servers\n", be.Name, be.Balance, len(be.Servers))
	fmt.Fprintf(b, "    timeout connect %s, server %s, tunnel %s; retries %d, redispatch %s\n",
		be.TimeoutConnect, be.TimeoutServer, durOrOff(be.TimeoutTunnel), be.Retries, onOff(be.Redispatch))
	if be.TimeoutQueue > 0 {
		fmt.Fprintf(b, "    timeout queue %s\n", be.TimeoutQueue)
	}
	for _, s := range be.Servers {
		fmt.Fprintf(b, "    server %s %s", s.Name, s.Address)
		if s.MaxConn > 0 {
			fmt.Fprintf(b, " maxconn %d", s.MaxConn)
		}
		fmt.Fprintln(b)
	}
}

// plainOrQuoted quotes s when it would not read as one item of a list:
// ALPN protocol ids may be any bytes.
func plainOrQuoted(s string) string {
	if q := strconv.Quote(s); q[1:len(q)-1] != s || strings.ContainsAny(s, " ,;\"") {
		return q
	}
	return s
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
