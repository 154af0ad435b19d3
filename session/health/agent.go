package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// AgentSpec is HAProxy's agent-check: every Interval a connection to the
// server's agent, Send written, one line read back. The line drives the
// server's operational state (up, down), its admin state (ready, drain,
// maint), its weight and its maxconn. The agent runs beside the regular
// check (or alone), on a goroutine of its own, and keeps running while the
// server is in maintenance so that an agent's "ready" can end it.
type AgentSpec struct {
	Interval time.Duration
	Timeout  time.Duration // connect, send and the line
	Send     []byte        // written once connected; nil: nothing
	// Apply receives every reply that was a whole line, before its health
	// word (if any) is applied: it carries out the admin state, weight and
	// maxconn words. Called on the server's agent goroutine, never
	// concurrently for one server; it may block on the Monitor's Pause and
	// Resume (the checker goroutine never waits for the agent's).
	Apply func(server int, r AgentReply)
}

// agentMaxLine caps what an agent may send before its line ends.
const agentMaxLine = 1024

// AgentHealth is the operational word of an agent's reply.
type AgentHealth uint8

const (
	AgentNoHealth AgentHealth = iota // no health word: the state stays as it is
	AgentUp                          // "up"
	AgentDown                        // "down", "stopped" or "fail": DOWN at once
)

// AgentAdmin is the administrative word of an agent's reply. HAProxy
// applies them as its CLI's set server state does (srv_adm_set_drain,
// srv_adm_set_maint, srv_adm_set_ready), so they are the operator's admin
// state, not one of the agent's own: an agent's ready ends an operator's
// drain too.
type AgentAdmin uint8

const (
	AgentNoAdmin AgentAdmin = iota
	AgentReady
	AgentDrain
	AgentMaint
)

// AgentReply is one agent line, parsed as HAProxy's
// tcpcheck_agent_expect_reply does: words separated by spaces, tabs or
// commas, in any order, the last of a kind winning, a description after
// '#'.
type AgentReply struct {
	Health     AgentHealth
	HealthWord string // as sent: "up", "down", "stopped", "fail"
	Admin      AgentAdmin
	// WeightPct is "N%", a weight relative to the configured one; -1 none.
	// Weight is "weight:N", absolute; -1 none.
	WeightPct, Weight int
	MaxConn           int    // "maxconn:N"; 0 = no limit; -1 none
	Desc              string // after '#': why the server is down
	Unknown           string // the first word that means nothing, reported
	Warning           string // a word of a kind known with a bad value
}

// ParseAgentReply reads one line (without its end of line).
func ParseAgentReply(line string) AgentReply {
	r := AgentReply{WeightPct: -1, Weight: -1, MaxConn: -1}
	rest := line
	for rest != "" {
		c := rest[0]
		if c == ' ' || c == '\t' || c == ',' {
			rest = rest[1:]
			continue
		}
		if c == '#' {
			r.Desc = strings.TrimLeft(rest[1:], " \t")
			break
		}
		end := strings.IndexAny(rest, " \t,")
		if end < 0 {
			end = len(rest)
		}
		r.word(rest[:end])
		rest = rest[end:]
	}
	return r
}

// word applies one word of a reply.
func (r *AgentReply) word(w string) {
	switch lw := strings.ToLower(w); {
	case lw == "up":
		r.Health, r.HealthWord = AgentUp, w
	case lw == "down", lw == "stopped", lw == "fail":
		r.Health, r.HealthWord = AgentDown, w
	case lw == "ready":
		r.Admin = AgentReady
	case lw == "drain":
		r.Admin = AgentDrain
	case lw == "maint":
		r.Admin = AgentMaint
	case w[0] >= '0' && w[0] <= '9' && strings.Contains(w, "%"):
		n, err := strconv.Atoi(strings.TrimSuffix(w, "%"))
		if err != nil || !strings.HasSuffix(w, "%") {
			r.warn("bad weight %q", w)
			return
		}
		r.WeightPct, r.Weight = n, -1
	case strings.HasPrefix(lw, "weight:"):
		n, err := strconv.Atoi(w[len("weight:"):])
		if err != nil || n < 0 || n > 256 {
			r.warn("bad weight %q: want 0 to 256", w)
			return
		}
		r.Weight, r.WeightPct = n, -1
	case strings.HasPrefix(lw, "maxconn:"):
		n, err := strconv.Atoi(w[len("maxconn:"):])
		if err != nil || n < 0 {
			r.warn("bad maxconn %q", w)
			return
		}
		r.MaxConn = n
	default:
		if r.Unknown == "" {
			r.Unknown = w
		}
	}
}

func (r *AgentReply) warn(format string, args ...any) {
	if r.Warning == "" {
		r.Warning = fmt.Sprintf(format, args...)
	}
}

// Status is HAProxy's check status for the reply: L7OK for up, L7STS for
// a down word, CHECKED when there is no health word.
func (r AgentReply) Status() string {
	switch r.Health {
	case AgentUp:
		return "L7OK"
	case AgentDown:
		return "L7STS"
	}
	return "CHECKED"
}

// describe is the reply as HAProxy's last_agt gives it: "via agent :
// down (maintenance)".
func (r AgentReply) describe() string {
	if r.Health != AgentNoHealth {
		msg := r.Desc
		if msg == "" || r.Health == AgentUp {
			switch {
			case r.Unknown != "":
				msg = r.Unknown
			case r.Warning != "":
				msg = r.Warning
			}
		}
		if msg == "" {
			return "via agent : " + r.HealthWord
		}
		return "via agent : " + r.HealthWord + " (" + msg + ")"
	}
	switch {
	case r.Unknown != "":
		return "agent reports an error : " + r.Unknown
	case r.Warning != "":
		return "agent warns : " + r.Warning
	}
	return ""
}

// AgentState is a server's agent as stats show it.
type AgentState struct {
	Up           bool   // the agent's health: false after down/stopped/fail until an up
	Status       string // HAProxy's: INI, L7OK, L7STS, CHECKED, L4CON, L4TOUT, L7TOUT, L7RSP
	Desc         string // last_agt: "via agent : down (maint window)", or why the agent failed
	Line         string // the last line the agent sent
	LastCheck    time.Time
	LastDuration time.Duration
	Checks       uint64 // agent connections finished
	Failures     uint64 // of which reached no agent or got no line (never counted against the server)
}

// agentResult is one agent check, from its goroutine to the checker's.
type agentResult struct {
	start time.Time
	dur   time.Duration
	reply AgentReply
	line  string
	ok    bool   // a whole line came
	desc  string // why not, when !ok
	state string // HAProxy's status when !ok
}

// agentProber talks to one server's agent.
type agentProber struct {
	spec  AgentSpec
	addr  atomic.Pointer[string] // where the agent listens; a move (SetAddr) replaces it
	buf   []byte
	ended chan struct{} // closed when the agent goroutine has returned
}

func (m *Monitor) newAgentProber(t Target) *agentProber {
	a := &agentProber{spec: *m.spec.Agent, buf: make([]byte, agentMaxLine), ended: make(chan struct{})}
	a.setAddr(t.Agent)
	return a
}

func (a *agentProber) setAddr(ap netip.AddrPort) {
	s := ap.String()
	a.addr.Store(&s)
}

// run asks the agent once. A failure to reach it is reported but is not
// a reply: HAProxy never takes a server down because its agent is away.
func (a *agentProber) run(ctx context.Context) agentResult {
	start := time.Now()
	r := a.ask(ctx)
	r.start, r.dur = start, time.Since(start)
	return r
}

func (a *agentProber) ask(ctx context.Context) agentResult {
	cctx, cancel := context.WithTimeout(ctx, a.spec.Timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(cctx, "tcp", *a.addr.Load())
	if err != nil {
		return a.failed(ctx, "connect", err)
	}
	conn := c.(*net.TCPConn)
	defer conn.Close()
	defer conn.SetLinger(0) // as a check: no TIME_WAIT left per agent check
	deadline, _ := cctx.Deadline()
	conn.SetDeadline(deadline)
	unhook := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer unhook()
	if len(a.spec.Send) > 0 {
		if _, err := conn.Write(a.spec.Send); err != nil {
			return a.failed(ctx, "send", err)
		}
	}
	n := 0
	for {
		m, err := conn.Read(a.buf[n:])
		n += m
		if i := bytes.IndexAny(a.buf[:n], "\r\n\x00"); i >= 0 {
			line := string(a.buf[:i])
			return agentResult{ok: true, line: line, reply: ParseAgentReply(line)}
		}
		if n == len(a.buf) {
			return agentResult{state: "L7RSP", desc: fmt.Sprintf("agent line longer than %d bytes", len(a.buf))}
		}
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, io.EOF) && n > 0 {
				// HAProxy wants the line ended; what came is ignored, the
				// status left as it was.
				return agentResult{desc: "Ignoring incomplete line from agent"}
			}
			return a.failed(ctx, "read", err)
		}
	}
}

// failed classifies an agent that could not be asked, as HAProxy's
// statuses: L4TOUT and L4CON for the connect, L7TOUT and L7RSP after.
func (a *agentProber) failed(ctx context.Context, phase string, err error) agentResult {
	p := &prober{spec: Spec{Timeout: a.spec.Timeout}}
	e := p.ioErr(ctx, phase, err, a.spec.Timeout)
	if e == errStopped {
		return agentResult{state: "stopped"}
	}
	var short *localShortage
	timeout := strings.Contains(e.Error(), "timeout after")
	switch {
	case errors.As(e, &short):
		return agentResult{state: "UNK", desc: e.Error()}
	case phase == "connect" && timeout:
		return agentResult{state: "L4TOUT", desc: e.Error()}
	case phase == "connect":
		return agentResult{state: "L4CON", desc: e.Error()}
	case timeout:
		return agentResult{state: "L7TOUT", desc: e.Error()}
	}
	return agentResult{state: "L7RSP", desc: e.Error()}
}

// runAgent is server s's agent goroutine: every agent interval it asks
// the agent, hands the reply's admin, weight and maxconn words to
// Spec.Agent.Apply, then its health word to the checker goroutine.
func (m *Monitor) runAgent(s *server, first time.Duration) {
	defer m.wg.Done()
	defer close(s.agent.ended)
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		}
		r := s.agent.run(s.ctx)
		if r.state == "stopped" {
			return
		}
		if s.ctx.Err() != nil {
			return // removed (del server) or stopped while it asked: nothing applies
		}
		if r.ok && s.agent.spec.Apply != nil {
			s.agent.spec.Apply(s.idx, r.reply)
		}
		select {
		case s.agents <- r:
		case <-s.ctx.Done():
			return
		}
		timer.Reset(time.Until(r.start.Add(jitter(s.agent.spec.Interval))))
	}
}

// agentAnswered records an agent check and applies its health word: up
// makes the agent agree, down, stopped and fail take the server DOWN at
// once (the agent's rise and fall are 1, as HAProxy's). An agent that
// could not be reached changes nothing: the regular check tests
// connectivity.
func (m *Monitor) agentAnswered(s *server, c *checker, r agentResult) {
	s.mu.Lock()
	a := &s.state.Agent
	a.Checks++
	a.LastCheck, a.LastDuration = r.start, r.dur
	if r.ok {
		a.Status, a.Desc, a.Line = r.reply.Status(), r.reply.describe(), r.line
	} else {
		a.Failures++
		a.Desc = r.desc
		if r.state != "" {
			a.Status = r.state
		}
	}
	s.mu.Unlock()
	if !r.ok || r.reply.Health == AgentNoHealth {
		return
	}
	c.agentUp = r.reply.Health == AgentUp
	msg := r.reply.describe()
	m.settle(s, c, Event{Agent: true, Message: msg})
}
