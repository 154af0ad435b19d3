package config

import (
	"time"

	"ringproxy/session"
)

// readHealth reads a backend's [backend.check], [backend.agent] and the
// observe keys: [backend.check] kind = "agent" is the agent alone, with
// no regular check; [backend.agent] runs it beside the regular one.
// It returns the agent's table, nil without one.
func readHealth(t *table, b *session.Backend) (agentAt *table) {
	if t.has("check") {
		ct := t.sub("check")
		if ct.str("kind", "tcp") == "agent" {
			b.Agent = readAgent(ct, 2*time.Second, time.Second, true)
			agentAt = ct
		} else {
			b.Check = readCheck(ct)
		}
	}
	if t.has("agent") {
		at := t.sub("agent")
		switch {
		case b.Agent != nil:
			t.fail("agent", nil, "[backend.check] kind = \"agent\" already runs the agent: with [backend.agent], make [backend.check] a regular check, or leave [backend.agent] out")
			at.known(agentKeys...)
		case b.Check != nil:
			b.Agent, agentAt = readAgent(at, b.Check.Interval, b.Check.Timeout, false), at
		default:
			b.Agent, agentAt = readAgent(at, 2*time.Second, time.Second, false), at
		}
	}
	b.Observe = readObserve(t, b.Check != nil)
	return agentAt
}

var agentKeys = []string{"port", "address", "interval", "timeout", "send"}

// readAgent reads an agent check's table; defaults are the regular
// check's interval and timeout, as HAProxy's agent-inter defaults to
// inter. alone is [backend.check] kind = "agent", where kind is a key.
func readAgent(t *table, interval, timeout time.Duration, alone bool) *session.Agent {
	if alone {
		t.known("kind")
	}
	a := &session.Agent{
		Port:     uint16(t.integer("port", 0, 1, 65535)),
		Address:  readCheckAddress(t, "address"),
		Interval: t.duration("interval", interval, true),
		Timeout:  t.duration("timeout", timeout, true),
		Send:     string(t.escaped("send")),
	}
	if a.Timeout > a.Interval && !t.bad["timeout"] && !t.bad["interval"] {
		t.fail("timeout", nil, "timeout %s is longer than interval %s", a.Timeout, a.Interval)
	}
	t.done()
	return a
}

// checkAgentPorts refuses an agent some server has no port for, once the
// servers are read.
func checkAgentPorts(at *table, b *session.Backend) {
	if b.Agent == nil || b.Agent.Port != 0 || at.bad["port"] {
		return
	}
	for _, s := range b.Servers {
		if s.AgentPort == 0 {
			at.failHere("port", "the agent needs a port: set port here, or agent_port on every server (%s has none)", s.Name)
			return
		}
	}
}

// readServerAgent reads a server's agent_port and agent_address, which
// only a backend with an agent has use for.
func readServerAgent(t *table, s *session.Server, agent bool) {
	s.AgentPort = uint16(t.integer("agent_port", 0, 1, 65535))
	s.AgentAddress = readCheckAddress(t, "agent_address")
	for _, k := range []string{"agent_port", "agent_address"} {
		if !agent && t.has(k) && !t.bad[k] {
			t.fail(k, nil, "the backend runs no agent ([backend.agent], or [backend.check] kind = \"agent\"), so %s would do nothing", k)
		}
	}
}
