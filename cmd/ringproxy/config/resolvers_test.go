package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// Servers by name: the name and its port, init_addr from the backend
// unless the server says otherwise, [resolvers] with HAProxy's defaults
// for what it leaves out.
func TestNamesAndResolvers(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[resolvers]
nameservers = ["10.0.0.53", "[2001:db8::53]:5353"]
hold_nx = "5s"
retries = 2
[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
backend = "app"
[[backend]]
name = "app"
balance = "consistent"
init_addr = "libc,none"
[[backend.server]]
name = "a"
address = "App1.Internal.:8080"
[[backend.server]]
name = "b"
address = "app2.internal:8080"
init_addr = ["192.0.2.1", "none"]
[[backend.server]]
name = "c"
address = "10.0.0.3:8080"
`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Resolvers
	if r == nil || !slices.Equal(r.Nameservers, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.53:53"), netip.MustParseAddrPort("[2001:db8::53]:5353")}) || r.ResolvConf != "" {
		t.Fatalf("resolvers %+v", r)
	}
	if r.HoldNX != 5*time.Second || r.HoldValid != 10*time.Second || r.Timeout != time.Second || r.Retries != 1 || r.PayloadSize != 512 {
		t.Errorf("resolvers %+v: want hold_nx 5s, HAProxy's defaults else, retries 2 (one more round)", r.Config)
	}
	s := c.Backends[0].Servers
	if s[0].FQDN != "app1.internal" || s[0].Address.Port() != 8080 || s[0].Address.Addr().IsValid() || !slices.Equal(s[0].InitAddr, []string{"libc", "none"}) {
		t.Errorf("server a: %+v", s[0])
	}
	if s[1].FQDN != "app2.internal" || !slices.Equal(s[1].InitAddr, []string{"192.0.2.1", "none"}) {
		t.Errorf("server b: %+v", s[1])
	}
	if s[2].FQDN != "" || s[2].InitAddr != nil {
		t.Errorf("server c: %+v", s[2])
	}
	if got := Summary(c); !strings.Contains(got, "resolvers: nameservers 10.0.0.53:53, [2001:db8::53]:5353") ||
		!strings.Contains(got, "server a app1.internal:8080 (DNS; init_addr libc,none)") {
		t.Errorf("summary:\n%s", got)
	}

	// No [resolvers]: a named server gets the defaults, from resolv.conf.
	c, err = Parse("t.toml", []byte(`
[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
backend = "app"
[[backend]]
name = "app"
[[backend.server]]
name = "a"
address = "app1.internal:8080"
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Resolvers; r == nil || r.ResolvConf != "/etc/resolv.conf" || len(r.Nameservers) != 0 || r.HoldValid != 10*time.Second {
		t.Errorf("default resolvers: %+v", r)
	}
	if s := c.Backends[0].Servers[0]; !slices.Equal(s.InitAddr, []string{"libc"}) {
		t.Errorf("default init_addr %v, want libc", s.InitAddr)
	}
	if got := Summary(c); !strings.Contains(got, "resolvers: nameservers from /etc/resolv.conf") {
		t.Errorf("summary:\n%s", got)
	}
}
