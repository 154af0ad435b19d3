package session

import (
	"strconv"
	"time"
)

// The access log: one line per closed session, HAProxy's tcplog field for
// field (README.md documents it), or the same values as JSON:
//
//	127.0.0.1:41234 [25/Nov/2026:00:58:20.123] web app/app1 0/1/1203 4096 -- 12/3/2/2/0 0/0
//
// client address:port, [accept time], frontend, backend/server (<NOSRV>
// when none was assigned), Tw/Tc/Tt in milliseconds (waited in the queue,
// to connect, in all; -1 when not reached), bytes to the client, the
// termination state, actconn/feconn/beconn/srvconn/retries, and
// srv_queue/backend_queue; for a frontend routing on the ClientHello the
// SNI in braces ({} when none was read), as a HAProxy capture shows it.
//
// The termination state is two characters, as in HAProxy. The first says
// what ended the session: '-' a normal close, 'C' the client (reset or
// error), 'c' the client timeout, 'S' the server (reset, refused, none
// usable), 's' a server-side timeout (server, connect, queue), 'P' the
// proxy refused it (PROXY header, access list, no route, bad ClientHello),
// 'K' killed at shutdown or by an operator, 'D' closed as its server went
// DOWN (on_down), 'U' closed on a backup as a primary came UP (on_up).
// The second says where it was: 'R' reading the PROXY header or
// inspecting the first bytes, 'Q' queued for a server slot, 'C'
// connecting, 'D' forwarding data, '-' normal end.

var termCause = [reasonCount]byte{
	ReasonDone: '-', ReasonClientTimeout: 'c', ReasonServerTimeout: 's', ReasonConnectFailed: 'S',
	ReasonClientError: 'C', ReasonServerError: 'S', ReasonKilled: 'K', ReasonQueueTimeout: 's',
	ReasonNoServer: 'S', ReasonBadProxy: 'P', ReasonDenied: 'P', ReasonNoRoute: 'P', ReasonBadHello: 'P',
	ReasonServerDown: 'D', ReasonServerUp: 'U',
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
	f := w.logFields(s)
	if w.p.cfg.Log.Format == "json" {
		b = f.appendJSON(b)
	} else {
		b = f.appendTCPLog(b)
	}
	w.p.access.submit(append(b, '\n'))
}

// logFields are the values of one access line, HAProxy's tcplog fields.
type logFields struct {
	s               *Session
	accepted        time.Time
	backend, server string
	tw, tc, tt      int64 // ms; -1 not reached
	actconn, feconn int64
	beconn, srvconn int64
	retries         int64
	srvQueue        int64  // always 0: sessions queue per backend, none per server
	beQueue         int64  // sessions ahead of it in its backend's queue
	name            []byte // the SNI, for frontends reading the ClientHello
	hasName         bool
}

func (w *worker) logFields(s *Session) logFields {
	f := logFields{s: s, accepted: w.p.epoch.Add(time.Duration(s.accepted)), backend: s.fe.cfg.Name, server: "<NOSRV>",
		tw: millis(s.queueWait), tc: millis(s.connTime), tt: millis(w.now - s.accepted),
		actconn: w.p.actconn.Load(), feconn: s.fe.cur.Load(), retries: int64(max(s.tries-1, 0)),
		beQueue: int64(s.queueAhead), name: w.name(s), hasName: s.fe.needsHello}
	if s.be != nil { // not routed: HAProxy names the frontend
		f.backend = s.be.cfg.Name
		f.beconn = s.be.sessions()
	}
	if s.srv != nil {
		f.server = s.srv.cfg.Name
		f.srvconn = s.srv.cur.Load()
	}
	return f
}

// millis is ns in whole milliseconds, -1 staying -1 (not reached).
func millis(ns int64) int64 {
	if ns < 0 {
		return -1
	}
	return ns / int64(time.Millisecond)
}

// appendTCPLog appends HAProxy's tcplog, field for field:
// %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq
func (f *logFields) appendTCPLog(b []byte) []byte {
	s := f.s
	if s.peer.IsValid() {
		b = s.peer.AppendTo(b)
	} else {
		b = append(b, "-:-"...) // reset in the backlog: getpeername failed
	}
	b = append(b, " ["...)
	b = f.accepted.AppendFormat(b, "02/Jan/2006:15:04:05.000")
	b = append(b, "] "...)
	b = append(b, s.fe.cfg.Name...)
	b = append(b, ' ')
	b = append(b, f.backend...)
	b = append(b, '/')
	b = append(b, f.server...)
	b = appendInts(b, ' ', '/', f.tw, f.tc, f.tt)
	b = appendInts(b, ' ', 0, int64(s.rep.bytes))
	b = append(b, ' ', termCause[s.reason], s.endPhase)
	b = appendInts(b, ' ', '/', f.actconn, f.feconn, f.beconn, f.srvconn, f.retries)
	b = appendInts(b, ' ', '/', f.srvQueue, f.beQueue)
	if f.hasName {
		b = append(b, " {"...)
		b = appendEscaped(b, f.name)
		b = append(b, '}')
	}
	return b
}

// appendInts appends lead, then vs separated by sep.
func appendInts(b []byte, lead, sep byte, vs ...int64) []byte {
	b = append(b, lead)
	for i, v := range vs {
		if i > 0 {
			b = append(b, sep)
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return b
}

// appendJSON appends the same fields as one JSON object, under the names
// Logstash's HAPROXYTCP pattern gives them, plus bytes_uploaded (from
// the client) and the SNI.
func (f *logFields) appendJSON(b []byte) []byte {
	s := f.s
	b = append(b, `{"client_ip":`...)
	if s.peer.IsValid() {
		b = append(b, '"')
		b = s.peer.Addr().AppendTo(b)
		b = append(b, `","client_port":`...)
		b = strconv.AppendUint(b, uint64(s.peer.Port()), 10)
	} else {
		b = append(b, `null,"client_port":null`...)
	}
	b = append(b, `,"accept_date":"`...)
	b = f.accepted.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, '"')
	b = appendJSONField(b, "frontend_name", s.fe.cfg.Name)
	b = appendJSONField(b, "backend_name", f.backend)
	b = appendJSONField(b, "server_name", f.server)
	b = appendJSONInt(b, "time_queue", f.tw)
	b = appendJSONInt(b, "time_backend_connect", f.tc)
	b = appendJSONInt(b, "time_duration", f.tt)
	b = appendJSONInt(b, "bytes_read", int64(s.rep.bytes))
	b = appendJSONInt(b, "bytes_uploaded", int64(s.req.bytes))
	b = append(b, `,"termination_state":"`...)
	b = append(b, termCause[s.reason], s.endPhase, '"')
	b = appendJSONInt(b, "actconn", f.actconn)
	b = appendJSONInt(b, "feconn", f.feconn)
	b = appendJSONInt(b, "beconn", f.beconn)
	b = appendJSONInt(b, "srvconn", f.srvconn)
	b = appendJSONInt(b, "retries", f.retries)
	b = appendJSONInt(b, "srv_queue", f.srvQueue)
	b = appendJSONInt(b, "backend_queue", f.beQueue)
	if f.hasName {
		b = appendJSONField(b, "sni", f.name)
	}
	return append(b, '}')
}

func appendJSONInt(b []byte, key string, v int64) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return strconv.AppendInt(b, v, 10)
}

// appendJSONField appends ,"key":"v" with v escaped: quotes, backslashes,
// control bytes, and bytes above 0x7e as \u00XX, so that a name a client
// sent, valid UTF-8 or not, keeps the line valid JSON.
func appendJSONField[T string | []byte](b []byte, key string, v T) []byte {
	const hex = "0123456789abcdef"
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":"`...)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
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
