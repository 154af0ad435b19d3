package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
)

// [backend.check] kind = "agent" is the agent alone; [backend.agent]
// runs beside a regular check and takes its interval and timeout by
// default; a server's agent_port and agent_address win.
func TestAgentKeys(t *testing.T) {
	c := parseOK(t, fe+`
[[backend]]
name = "app"
  [backend.check]
  kind = "agent"
  port = 7777
  interval = "3s"
  send = 'hello\n'
  [[backend.server]]
  name = "a"
  address = "10.0.0.1:80"
  [[backend.server]]
  name = "b"
  address = "10.0.0.2:80"
  agent_port = 7778
  agent_address = "10.0.9.2"
`)
	be := c.Backends[0]
	a := be.Agent
	if be.Check != nil || a == nil || a.Port != 7777 || a.Interval != 3*time.Second || a.Timeout != time.Second || a.Send != "hello\n" {
		t.Fatalf("check %+v, agent %+v", be.Check, a)
	}
	for i, w := range []string{"10.0.0.1:7777", "10.0.9.2:7778"} {
		if got := session.AgentAddr(a, be.Servers[i]); got != netip.MustParseAddrPort(w) {
			t.Errorf("agent of %s at %v, want %s", be.Servers[i].Name, got, w)
		}
	}
	s := Summary(c)
	for _, want := range []string{
		"    check none but the agent: a server is UP until its agent says down\n",
		"    agent at port 7777: send \"hello\\n\", read one line (up, down, ready, drain, maint, N%, maxconn:N); every 3s, timeout 1s\n",
		"    agent of b at 10.0.9.2:7778\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}

	c = parseOK(t, fe+`
[[backend]]
name = "app"
  [backend.check]
  interval = "5s"
  timeout = "2s"
  [backend.agent]
  address = "10.0.0.9"
  [[backend.server]]
  name = "a"
  address = "10.0.0.1:80"
  agent_port = 7000
`)
	be = c.Backends[0]
	if be.Check == nil || be.Agent == nil || be.Agent.Interval != 5*time.Second || be.Agent.Timeout != 2*time.Second {
		t.Fatalf("check %+v, agent %+v", be.Check, be.Agent)
	}
	if got := session.AgentAddr(be.Agent, be.Servers[0]); got != netip.MustParseAddrPort("10.0.0.9:7000") {
		t.Errorf("agent at %v", got)
	}
}

func TestAgentBad(t *testing.T) {
	srv := "[[backend.server]]\nname = \"s1\"\naddress = \"127.0.0.1:9000\"\n"
	for _, tc := range []struct{ name, toml, want string }{
		{"no port", "[[backend]]\nname = \"app\"\n[backend.check]\nkind = \"agent\"\n" + srv,
			"backend[0] (app).check: the agent needs a port: set port here, or agent_port on every server (s1 has none)"},
		{"agent port without agent", "[[backend]]\nname = \"app\"\n" + srv + "agent_port = 5\n",
			"agent_port: the backend runs no agent"},
		{"check key on agent", "[[backend]]\nname = \"app\"\n[backend.check]\nkind = \"agent\"\nport = 1\nrise = 2\n" + srv,
			"t.toml:11: unknown key backend.check.rise"},
		{"agent twice", "[[backend]]\nname = \"app\"\n[backend.check]\nkind = \"agent\"\nport = 1\n[backend.agent]\nport = 2\n" + srv,
			"[backend.check] kind = \"agent\" already runs the agent"},
		{"agent timeout", "[[backend]]\nname = \"app\"\n[backend.agent]\nport = 1\ninterval = \"1s\"\ntimeout = \"2s\"\n" + srv,
			"t.toml:11: backend[0] (app).agent.timeout: timeout 2s is longer than interval 1s"},
		{"agent port range", "[[backend]]\nname = \"app\"\n[backend.agent]\nport = 70000\n" + srv,
			"t.toml:9: backend[0] (app).agent.port: must be between 1 and 65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(fe+tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
