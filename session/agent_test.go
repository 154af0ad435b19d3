package session_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/admin"
	"ringproxy/session/testbed"
)

// fastAgent is an agent asked every 100ms.
func fastAgent() *session.Agent {
	return &session.Agent{Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond}
}

// withAgents starts an agent per server of cfg's backend, each answering
// reply, and points the servers at them.
func withAgents(t *testing.T, cfg *session.Config, reply string) []*testbed.Agent {
	be := cfg.Backends[0]
	var agents []*testbed.Agent
	for _, s := range be.Servers {
		a := testbed.StartAgent(t, reply)
		s.AgentPort = a.Addr().Port()
		agents = append(agents, a)
	}
	return agents
}

// statField is one field of server's row in show stat.
func statField(t *testing.T, p *session.Proxy, server, field string) string {
	t.Helper()
	out := admin.Run(p, "show stat")
	lines := strings.Split(out, "\n")
	col := -1
	for i, f := range strings.Split(strings.TrimPrefix(lines[0], "# "), ",") {
		if f == field {
			col = i
		}
	}
	for _, l := range lines[1:] {
		if f := strings.Split(l, ","); col >= 0 && len(f) > col && f[0] == "app" && f[1] == server {
			return f[col]
		}
	}
	t.Fatalf("no %s for %s in show stat:\n%s", field, server, out)
	return ""
}

// spread opens n sessions one after the other and counts them by server.
func spread(t *testing.T, addr netip.AddrPort, n int) map[string]int {
	got := map[string]int{}
	for range n {
		got[whoOnce(t, netip.Addr{}, addr)]++
	}
	return got
}

func adminState(p *session.Proxy, server string) string {
	for _, s := range p.Snapshot().Backends[0].Servers {
		if s.Name == server {
			return s.Admin
		}
	}
	return ""
}

// An agent alone ([backend.check] kind = "agent") drives its server: a
// weight moves the share of new sessions, drain and maint take it out
// (the operator's admin states, as HAProxy's agent sets them) and ready
// brings it back, down takes it DOWN with the agent's reason and up
// brings it back; show stat gives the agent's columns as HAProxy does.
func TestAgentDrivesServer(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg, _ := named(t, eng, "roundrobin", "a", "b")
		cfg.Backends[0].Agent = fastAgent()
		agents := withAgents(t, cfg, "up 100%")
		p, addr := startProxy(t, cfg)
		weightIs := func(w int) func() bool {
			return func() bool { cur, _, _ := p.ServerWeight("app", "b"); return cur == w }
		}

		agents[1].Say("25%")
		testbed.WaitFor(t, 3*time.Second, weightIs(25), "b's agent to set its weight to 25% of 100")
		if got := spread(t, addr, 100); got["b"] < 15 || got["b"] > 25 || got["a"]+got["b"] != 100 {
			t.Errorf("at weights 100 and 25, 100 sessions went %v, want about 80 and 20", got)
		}
		if st := statField(t, p, "b", "agent_status"); st != "CHECKED" {
			t.Errorf("agent_status %q after a reply without a health word, want CHECKED", st)
		}

		agents[1].Say("drain 100%")
		testbed.WaitFor(t, 3*time.Second, func() bool { return adminState(p, "b") == "drain" }, "b's agent to drain it")
		if got := statField(t, p, "b", "status"); got != "DRAIN (agent)" {
			t.Errorf("status %q drained with an agent, want DRAIN (agent) as HAProxy", got)
		}
		if got := spread(t, addr, 10); got["a"] != 10 {
			t.Errorf("b drained by its agent, sessions went %v", got)
		}
		agents[1].Say("ready")
		testbed.WaitFor(t, 3*time.Second, func() bool { return adminState(p, "b") == "ready" }, "b's agent to make it ready")
		if got := spread(t, addr, 10); got["b"] == 0 {
			t.Errorf("b ready again, sessions went %v", got)
		}

		agents[1].Say("maint")
		testbed.WaitFor(t, 3*time.Second, func() bool { return adminState(p, "b") == "maint" }, "b's agent to put it in maint")
		if serverUp(p, "b") || statField(t, p, "b", "status") != "MAINT" {
			t.Errorf("b in maint by its agent: up %v, status %q", serverUp(p, "b"), statField(t, p, "b", "status"))
		}
		agents[1].Say("ready up")
		testbed.WaitFor(t, 3*time.Second, func() bool { return adminState(p, "b") == "ready" && serverUp(p, "b") }, "b's agent to end its maint")

		agents[1].Say("down #backup window")
		testbed.WaitFor(t, 3*time.Second, func() bool { return !serverUp(p, "b") }, "b's agent to take it DOWN")
		if got := spread(t, addr, 10); got["a"] != 10 {
			t.Errorf("b DOWN by its agent, sessions went %v", got)
		}
		for field, want := range map[string]string{"agent_status": "L7STS", "agent_desc": "Layer7 wrong status",
			"last_agt": "via agent : down (backup window)", "agent_health": "0", "agent_rise": "1", "agent_fall": "1", "status": "DOWN (agent)"} {
			if got := statField(t, p, "b", field); got != want {
				t.Errorf("show stat %s %q, want %q", field, got, want)
			}
		}
		agents[1].Say("up")
		testbed.WaitFor(t, 3*time.Second, func() bool { return serverUp(p, "b") }, "b's agent to bring it back UP")
		if got := statField(t, p, "b", "agent_status"); got != "L7OK" {
			t.Errorf("agent_status %q after up, want L7OK", got)
		}
		if got := statField(t, p, "b", "agent_health"); got != "1" {
			t.Errorf("agent_health %q after up, want 1", got)
		}
	})
}

// An agent's maxconn:N limits its server's sessions at once: beyond it
// new sessions go to the other server.
func TestAgentMaxConn(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg, _ := named(t, eng, "roundrobin", "a", "b")
		cfg.Backends[0].Agent = fastAgent()
		agents := withAgents(t, cfg, "up")
		agents[0].Say("up maxconn:1")
		p, addr := startProxy(t, cfg)
		testbed.WaitFor(t, 3*time.Second, func() bool { return p.Snapshot().Backends[0].Servers[0].MaxConn == 1 }, "a's agent to set maxconn 1")
		got := map[string]int{}
		for range 6 {
			name, c := who(t, netip.Addr{}, addr)
			defer c.Close()
			got[name]++
		}
		if got["a"] != 1 || got["b"] != 5 {
			t.Errorf("6 held sessions with a's maxconn 1 went %v, want a 1, b 5", got)
		}
		if st := admin.Run(p, "show servers state"); !strings.Contains(st, " 22 0 0 - ") {
			t.Errorf("show servers state without the agent configured, enabled and an agent (22):\n%s", st)
		}
	})
}

// Beside a regular tcp check the agent and the check must both agree: an
// agent's down takes a server DOWN whose check passes, its up brings it
// back; a server whose traffic port dies goes DOWN by its check though
// its agent says up; an agent nobody answers for changes nothing. The
// agent is sent agent-send.
func TestAgentBesideCheck(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		a := testbed.StartNamed(t, "a")
		b := startRestartable(t, "b")
		cfg := testConfig(eng, a.Addr(), b.addr)
		be := cfg.Backends[0]
		be.Servers[0].Name, be.Servers[1].Name = "a", "b"
		be.Check = fastCheck("tcp")
		be.Agent = fastAgent()
		be.Agent.Send = "hello agent\n"
		agents := withAgents(t, cfg, "up")
		p, addr := startProxy(t, cfg)

		agents[1].Say("down")
		testbed.WaitFor(t, 3*time.Second, func() bool { return !serverUp(p, "b") }, "b's agent to take it DOWN")
		time.Sleep(300 * time.Millisecond) // checks pass meanwhile
		if serverUp(p, "b") {
			t.Fatal("b UP again while its agent says down")
		}
		if got := statField(t, p, "b", "check_status"); got != "L4OK" {
			t.Errorf("b's check_status %q, want L4OK: its check passes", got)
		}
		agents[1].Say("up")
		testbed.WaitFor(t, 3*time.Second, func() bool { return serverUp(p, "b") }, "b's agent to bring it back")
		if got := agents[1].Sent(); got != "hello agent\n" {
			t.Errorf("the agent got %q, want the agent's send", got)
		}

		b.stop()
		testbed.WaitFor(t, 3*time.Second, func() bool { return !serverUp(p, "b") }, "b's check to take it DOWN though its agent says up")
		if got := spread(t, addr, 5); got["a"] != 5 {
			t.Errorf("b DOWN, sessions went %v", got)
		}
		b.start(t)
		testbed.WaitFor(t, 3*time.Second, func() bool { return serverUp(p, "b") }, "b to come back")

		agents[1].Close() // the agent is gone: connects fail, the server stays
		time.Sleep(400 * time.Millisecond)
		if !serverUp(p, "b") {
			t.Error("b DOWN because its agent does not answer")
		}
		if got := statField(t, p, "b", "agent_status"); got != "L4CON" {
			t.Errorf("agent_status %q with the agent gone, want L4CON", got)
		}
	})
}
