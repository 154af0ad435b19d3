package admin

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"ringproxy/session"
)

// showSess is show sess [ID]: a line per live session that begins as
// HAProxy's does (the id, then proto, src, fe, be, srv, ts, epoch and age
// as key=value), followed by what ringproxy knows instead of HAProxy's
// stream internals: its state, worker and bytes each way.
func showSess(p *session.Proxy, args []string) string {
	var id uint64
	if len(args) > 0 {
		var err error
		if id, err = parseSessionID(args[0]); err != nil {
			return "error: Session not found.\n"
		}
	}
	var b strings.Builder
	for _, s := range p.Sessions() {
		if len(args) == 0 || s.ID == id {
			writeSess(&b, s)
		}
	}
	if len(args) > 0 && b.Len() == 0 {
		return "error: Session not found.\n"
	}
	return b.String()
}

func writeSess(b *strings.Builder, s session.SessionInfo) {
	proto := "tcpv4"
	if s.Client.Addr().Is6() && !s.Client.Addr().Is4In6() {
		proto = "tcpv6"
	}
	be, srv := s.Backend, s.Server
	if be == "-" {
		be = "<NONE>"
	}
	if srv == "-" {
		srv = "<none>"
	}
	fmt.Fprintf(b, "0x%x: proto=%s src=%s fe=%s be=%s srv=%s ts=00 epoch=0 age=%s state=%s worker=%d bytes_in=%d bytes_out=%d\n",
		s.ID, proto, s.Client, s.Frontend, be, srv, humanTime(s.Age), s.State, s.Worker, s.BytesIn, s.BytesOut)
}

// shutdownSession is shutdown session ID.
func shutdownSession(p *session.Proxy, args []string) string {
	if len(args) == 0 {
		return "error: Session pointer expected (use 'show sess').\n"
	}
	id, err := parseSessionID(args[0])
	if err != nil {
		return "error: No such session (use 'show sess').\n"
	}
	if err := p.ShutdownSession(id); err != nil {
		return failure(err)
	}
	return ""
}

// parseSessionID reads an id as show sess prints it, 0x and hex digits.
func parseSessionID(s string) (uint64, error) {
	hex, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return 0, fmt.Errorf("session id %q: want 0x and hex digits", s)
	}
	return strconv.ParseUint(hex, 16, 64)
}

// humanTime writes d as HAProxy's human_time: the two largest units of
// days, hours, minutes and seconds ("3d4h", "2h5m", "1m30s", "0s").
func humanTime(d time.Duration) string {
	t := int64(d / time.Second)
	if t < 0 {
		return "?"
	}
	var b strings.Builder
	left := 2
	for _, u := range []struct {
		secs int64
		name string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}} {
		n := t / u.secs
		if u.secs < 86400 {
			n %= 86400 / u.secs
		}
		if left > 0 && n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			left--
		}
	}
	if left > 0 && t%60 > 0 || t == 0 {
		fmt.Fprintf(&b, "%ds", t%60)
	}
	return b.String()
}
