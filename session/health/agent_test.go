package health

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Agent lines are read as HAProxy's tcpcheck_agent_expect_reply reads
// them: words in any order and any case, separated by spaces, tabs or
// commas, the last of a kind winning, the description after '#'.
func TestParseAgentReply(t *testing.T) {
	none := AgentReply{WeightPct: -1, Weight: -1, MaxConn: -1}
	with := func(f func(*AgentReply)) AgentReply { r := none; f(&r); return r }
	for line, want := range map[string]AgentReply{
		"":                          none,
		"up":                        with(func(r *AgentReply) { r.Health, r.HealthWord = AgentUp, "up" }),
		"DOWN #backup in progress":  with(func(r *AgentReply) { r.Health, r.HealthWord, r.Desc = AgentDown, "DOWN", "backup in progress" }),
		"stopped # \tgone":          with(func(r *AgentReply) { r.Health, r.HealthWord, r.Desc = AgentDown, "stopped", "gone" }),
		"fail,up":                   with(func(r *AgentReply) { r.Health, r.HealthWord = AgentUp, "up" }),
		"75%":                       with(func(r *AgentReply) { r.WeightPct = 75 }),
		"drain\t50% maxconn:30":     with(func(r *AgentReply) { r.Admin, r.WeightPct, r.MaxConn = AgentDrain, 50, 30 }),
		"maint,ready":               with(func(r *AgentReply) { r.Admin = AgentReady }),
		"weight:7 up":               with(func(r *AgentReply) { r.Weight, r.Health, r.HealthWord = 7, AgentUp, "up" }),
		"hello up":                  with(func(r *AgentReply) { r.Unknown, r.Health, r.HealthWord = "hello", AgentUp, "up" }),
		"7%x maxconn:-1 weight:300": with(func(r *AgentReply) { r.Warning = `bad weight "7%x"` }),
	} {
		if got := ParseAgentReply(line); got != want {
			t.Errorf("%q: %+v, want %+v", line, got, want)
		}
	}
	for line, want := range map[string]string{
		"down #maint window": "via agent : down (maint window)",
		"up":                 "via agent : up",
		"up hello":           "via agent : up (hello)",
		"hello":              "agent reports an error : hello",
		"down#x":             "agent reports an error : down#x", // '#' starts a description only after a separator, as in HAProxy
		"50%":                "",
	} {
		if got := ParseAgentReply(line).describe(); got != want {
			t.Errorf("%q described %q, want %q", line, got, want)
		}
	}
}

// The agent's word and the regular check must agree: an agent's down
// takes a server whose check passes DOWN, its up brings it back; an agent
// that cannot be reached changes nothing. Apply sees every whole line.
func TestAgentWithCheck(t *testing.T) {
	var reply atomic.Value
	reply.Store("up")
	agent := serve(t, func(c net.Conn) {
		c.Write([]byte(reply.Load().(string) + "\n"))
		c.Close()
	})
	srv := serve(t, hangUp)
	applied := make(chan AgentReply, 64)
	spec := Spec{Kind: TCP, Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 1, Fall: 1,
		Agent: &AgentSpec{Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond,
			Apply: func(_ int, r AgentReply) {
				select {
				case applied <- r:
				default:
				}
			}}}
	_, rec := start(t, spec, Target{Name: "b/s", Addr: srv.addr, Agent: agent.addr})
	reply.Store("down #going away")
	ev, _ := rec.next(t, 2*time.Second)
	if ev.Up || !ev.Agent || !strings.Contains(ev.Message, "is DOWN: via agent : down (going away)") {
		t.Fatalf("event %+v", ev)
	}
	reply.Store("up")
	if ev, _ = rec.next(t, 2*time.Second); !ev.Up {
		t.Fatalf("event %+v, want UP", ev)
	}
	if r := <-applied; r.Health == AgentNoHealth {
		t.Errorf("Apply got %+v", r)
	}
	agent.Close()
	time.Sleep(200 * time.Millisecond)
	rec.none(t)
}
