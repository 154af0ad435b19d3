package config

import (
	"fmt"
	"strings"
	"time"

	"ringproxy/session"
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
	fmt.Fprintf(&b, "log: level %s, access %s", c.Log.Level, onOff(c.Log.Access))
	if c.Log.Access {
		fmt.Fprintf(&b, " to %s, format %s", c.Log.Target, c.Log.Format)
	}
	fmt.Fprintln(&b)
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
		fmt.Fprintf(b, "    route %d: %s -> %s\n", i+1, r.Rule.String(), r.BackendName)
	}
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
