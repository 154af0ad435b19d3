package config

import (
	"strings"
	"testing"
	"time"
)

// slowBackend is a backend with servers a (its own slowstart when
// aOwn is not ""), b (maxconn 10) and c, over balance.
func slowBackend(balance, backendSlow, aOwn string) string {
	s := "[[backend]]\nname = \"app\"\nbalance = \"" + balance + "\"\n"
	if backendSlow != "" {
		s += "slowstart = " + backendSlow + "\n"
	}
	s += "[[backend.server]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n"
	if aOwn != "" {
		s += "slowstart = " + aOwn + "\n"
	}
	s += "[[backend.server]]\nname = \"b\"\naddress = \"127.0.0.1:2\"\nmaxconn = 10\n"
	s += "[[backend.server]]\nname = \"c\"\naddress = \"127.0.0.1:3\"\n"
	return s + fe
}

// TestSlowStartKeys: a backend's slowstart is its servers' default, a
// server's own wins ("0s" turns it off), and check says what each ramps.
func TestSlowStartKeys(t *testing.T) {
	c := parseOK(t, slowBackend("roundrobin", `"30s"`, `"0s"`))
	want := []time.Duration{0, 30 * time.Second, 30 * time.Second}
	for i, s := range c.Backends[0].Servers {
		if s.SlowStart != want[i] {
			t.Errorf("server %s: slowstart %v, want %v", s.Name, s.SlowStart, want[i])
		}
	}
	sum := Summary(c)
	for _, line := range []string{
		"    server a 127.0.0.1:1 weight 100\n",
		"    server b 127.0.0.1:2 weight 100 maxconn 10 slowstart 30s (ramps weight from 1/16 and maxconn from 1 when it comes back UP)\n",
		"    server c 127.0.0.1:3 weight 100 slowstart 30s (ramps weight from 1/16 when it comes back UP)\n",
	} {
		if !strings.Contains(sum, line) {
			t.Errorf("summary lacks %q:\n%s", line, sum)
		}
	}
	c = parseOK(t, slowBackend("roundrobin", "", `"1m"`))
	if s := c.Backends[0].Servers; s[0].SlowStart != time.Minute || s[1].SlowStart != 0 || s[2].SlowStart != 0 {
		t.Errorf("only a's own slowstart: servers got %v, %v, %v", s[0].SlowStart, s[1].SlowStart, s[2].SlowStart)
	}
	c = parseOK(t, "[[backend]]\nname = \"app\"\nbalance = \"source\"\n[[backend.server]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\nmaxconn = 5\nslowstart = \"10s\"\n"+fe)
	if sum := Summary(c); !strings.Contains(sum, "    server a 127.0.0.1:1 weight 100 maxconn 5 slowstart 10s (ramps maxconn from 1 when it comes back UP)\n") {
		t.Errorf("source with maxconn: summary\n%s", sum)
	}
}

func TestSlowStartBad(t *testing.T) {
	for _, tc := range []struct{ name, toml, want string }{
		{"not a string", slowBackend("roundrobin", "30", ""), `t.toml:4: backend[0] (app).slowstart: expected a duration string like "30s", got integer`},
		{"negative", slowBackend("roundrobin", `"-5s"`, ""), `t.toml:4: backend[0] (app).slowstart: bad duration "-5s"`},
		{"not a duration", slowBackend("roundrobin", "", `"soon"`), `t.toml:7: backend[0] (app).server[0] (a).slowstart: bad duration "soon"`},
		{"static server without maxconn", slowBackend("static-rr", "", `"10s"`),
			`t.toml:7: backend[0] (app).server[0] (a).slowstart: slowstart would do nothing: balance = "static-rr" does not ramp weights, only maxconn, and server a has no maxconn (set one, or remove slowstart)`},
		{"first backend default", slowBackend("first", `"10s"`, ""),
			`t.toml:4: backend[0] (app).slowstart: slowstart would do nothing for server a: balance = "first" does not ramp weights, only maxconn, and it has no maxconn (set one, or slowstart = "0s" on it)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant substring:\n%s", err, tc.want)
			}
		})
	}
}
