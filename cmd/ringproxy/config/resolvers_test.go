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

// server_template expands into count servers, each with the template's
// keys; an SRV name has no port and takes no weight.
func TestServerTemplate(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
backend = "app"
[[backend]]
name = "app"
balance = "consistent"
[backend.check]
[[backend.server]]
name = "static"
address = "10.0.0.1:80"
[[backend.server_template]]
name = "web"
count = 3
address = "_http._tcp.web.service.consul"
maxconn = 50
check_port = 8008
[[backend.server_template]]
name = "api"
count = 2
address = "api.internal:9000"
weight = 10
backup = true
`))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Backends[0].Servers
	var names []string
	for _, x := range s {
		names = append(names, x.Name)
	}
	if got := strings.Join(names, " "); got != "static web1 web2 web3 api1 api2" {
		t.Fatalf("servers %s", got)
	}
	web, api := s[1].Template, s[4].Template
	if web == nil || !web.SRV || web.FQDN != "_http._tcp.web.service.consul" || web.Count != 3 || s[3].Template != web {
		t.Errorf("web template %+v", web)
	}
	if s[2].MaxConn != 50 || s[2].CheckPort != 8008 || s[2].Address.Port() != 0 || s[2].FQDN != web.FQDN || s[2].InitAddr != nil {
		t.Errorf("web2 %+v", s[2])
	}
	if api == nil || api.SRV || api.FQDN != "api.internal" || api.Port != 9000 || s[5].Weight != 10 || !s[5].Backup || s[5].Address.Port() != 9000 {
		t.Errorf("api template %+v, api2 %+v", api, s[5])
	}
	if s[1].HashKey() == s[2].HashKey() {
		t.Errorf("two slots share the hash key %q", s[1].HashKey())
	}
	sum := Summary(c)
	for _, want := range []string{"server_template web1..web3 from _http._tcp.web.service.consul (SRV: targets, ports, weights) maxconn 50; unfilled slots in maintenance",
		"server_template api1..api2 from api.internal:9000 (the addresses of the name) weight 10 backup", "names: app/web1..3 _http._tcp.web.service.consul, app/api1..2 api.internal"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	if strings.Contains(sum, "server web2") {
		t.Errorf("the summary lists slots one by one:\n%s", sum)
	}
}

func TestServerTemplateRefused(t *testing.T) {
	head := "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:8080\"]\nbackend = \"app\"\n[[backend]]\nname = \"app\"\n[[backend.server_template]]\nname = \"web\"\n"
	for _, c := range []struct{ body, want string }{
		{"count = 2\naddress = \"10.0.0.1:80\"\n", `t.toml:10: backend[0] (app).server_template[0] (web).address: bad address "10.0.0.1:80": a template fills from a DNS name (an SRV name, or name:port), not an IP`},
		{"address = \"web.internal:80\"\n", `backend[0] (app).server_template[0] (web): missing count`},
		{"count = 0\naddress = \"web.internal:80\"\n", `t.toml:9: backend[0] (app).server_template[0] (web).count: must be between 1 and 1024, got 0`},
		{"count = 2\naddress = \"_http._tcp.web.consul\"\nweight = 5\n", `t.toml:11: backend[0] (app).server_template[0] (web).weight: an SRV template's slots take their records' weights`},
		{"count = 2\naddress = \"web.internal\"\n", `t.toml:10: backend[0] (app).server_template[0] (web).address: bad address "web.internal": want IP:port or name:port`},
		{"count = 2\naddress = \"web.internal:80\"\ninit_addr = \"none\"\n", `t.toml:11: unknown key backend.server_template.init_addr`},
		{"count = 2\naddress = \"web.internal:80\"\n[[backend.server]]\nname = \"web2\"\naddress = \"10.0.0.1:80\"\n", `duplicate server name "web2"`},
	} {
		_, err := Parse("t.toml", []byte(head+c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.body, err, c.want)
		}
	}
}
