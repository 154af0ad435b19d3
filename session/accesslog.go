package session

import (
	"strconv"
	"time"
)

// The access log: one line per closed session, modelled on HAProxy's
// tcplog (README.md documents it):
//
//	127.0.0.1:41234 [25/Nov/2026:00:58:20.123] web app/app1 0/1/1203 158 4096 -- 12/3/2/1
//
// client address:port, [accept time], frontend, backend/server (<NOSRV>
// when none was assigned), Tw/Tc/Tt in milliseconds (waited in the queue,
// to connect, in all; -1 when not reached), bytes from the client, bytes
// to the client, the termination state, and actconn/feconn/srvconn/retries
// at the end, and for a frontend routing on the ClientHello the SNI in
// braces ({} when none was read), as a HAProxy capture shows it.
//
// The termination state is two characters, as in HAProxy. The first says
// what ended the session: '-' a normal close, 'C' the client (reset or
// error), 'c' the client timeout, 'S' the server (reset, refused, none
// usable), 's' a server-side timeout (server, connect, queue), 'P' the
// proxy refused it (PROXY header, access list), 'K' killed at shutdown.
// The second says where it was: 'R' reading the PROXY header, 'Q' queued
// for a server slot, 'C' connecting, 'D' forwarding data, '-' normal end.

var termCause = [reasonCount]byte{
	ReasonDone: '-', ReasonClientTimeout: 'c', ReasonServerTimeout: 's', ReasonConnectFailed: 'S',
	ReasonClientError: 'C', ReasonServerError: 'S', ReasonKilled: 'K', ReasonQueueTimeout: 's',
	ReasonNoServer: 'S', ReasonBadProxy: 'P', ReasonDenied: 'P', ReasonNoRoute: 'P', ReasonBadHello: 'P',
}

// phaseOf is the second character for a session in state st.
func phaseOf(st sessState) byte {
	switch st {
	case stHeader, stInspect:
		return 'R'
	case stQueued:
		return 'Q'
	case stConnecting:
		return 'C'
	}
	return 'D'
}

// accessLog formats s's line into a sink buffer: no allocation.
func (w *worker) accessLog(s *Session) {
	b := w.p.access.buffer()
	if b == nil {
		return // counted as dropped
	}
	if s.peer.IsValid() {
		b = s.peer.AppendTo(b)
	} else {
		b = append(b, "-:-"...) // reset in the backlog: getpeername failed
	}
	b = append(b, " ["...)
	b = w.p.epoch.Add(time.Duration(s.accepted)).AppendFormat(b, "02/Jan/2006:15:04:05.000")
	b = append(b, "] "...)
	b = append(b, s.fe.cfg.Name...)
	b = append(b, ' ')
	if s.be != nil {
		b = append(b, s.be.cfg.Name...)
	} else {
		b = append(b, s.fe.cfg.Name...) // not routed: HAProxy names the frontend
	}
	b = append(b, '/')
	if s.srv != nil {
		b = append(b, s.srv.cfg.Name...)
	} else {
		b = append(b, "<NOSRV>"...)
	}
	b = append(b, ' ')
	b = appendMillis(b, s.queueWait, s.queueWait >= 0)
	b = append(b, '/')
	b = appendMillis(b, s.connTime, s.connTime >= 0)
	b = append(b, '/')
	b = appendMillis(b, w.now-s.accepted, true)
	b = append(b, ' ')
	b = strconv.AppendUint(b, s.req.bytes, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, s.rep.bytes, 10)
	b = append(b, ' ', termCause[s.reason], s.endPhase, ' ')
	b = strconv.AppendInt(b, w.p.actconn.Load(), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, s.fe.cur.Load(), 10)
	b = append(b, '/')
	if s.srv != nil {
		b = strconv.AppendInt(b, s.srv.cur.Load(), 10)
	} else {
		b = append(b, '0')
	}
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(max(s.tries-1, 0)), 10)
	if s.fe.needsHello {
		b = append(b, " {"...)
		b = appendEscaped(b, w.name(s))
		b = append(b, '}')
	}
	b = append(b, '\n')
	w.p.access.submit(b)
}

// appendEscaped appends a name a client sent, each byte that could break
// the line or its parsers as #XX, as HAProxy escapes its captures.
func appendEscaped(b, name []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || c == '{' || c == '}' || c == '#' || c == '"' || c == '\\' {
			b = append(b, '#', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

func appendMillis(b []byte, ns int64, reached bool) []byte {
	if !reached {
		return append(b, "-1"...)
	}
	return strconv.AppendInt(b, ns/int64(time.Millisecond), 10)
}
