package config

import (
	"strings"
	"testing"
	"time"
)

// observe = "layer4" defaults as HAProxy with a check (error_limit 10,
// fail-check) and as nginx without one (mark-down, back after 10s).
func TestObserveKeys(t *testing.T) {
	srv := "[[backend.server]]\nname = \"s1\"\naddress = \"127.0.0.1:9000\"\n"
	c := parseOK(t, fe+"[[backend]]\nname = \"app\"\nobserve = \"layer4\"\n[backend.check]\n"+srv)
	if o := c.Backends[0].Observe; o == nil || o.ErrorLimit != 10 || o.OnError != "fail-check" || o.Downtime != 0 {
		t.Errorf("with a check: %+v", o)
	}
	if s := Summary(c); !strings.Contains(s, "    observe layer4: 10 consecutive connect failures: on_error fail-check\n") {
		t.Errorf("summary:\n%s", s)
	}
	c = parseOK(t, fe+"[[backend]]\nname = \"app\"\nobserve = \"layer4\"\nerror_limit = 3\nobserve_downtime = \"30s\"\n"+srv)
	if o := c.Backends[0].Observe; o == nil || o.ErrorLimit != 3 || o.OnError != "mark-down" || o.Downtime != 30*time.Second {
		t.Errorf("without a check: %+v", o)
	}
	if s := Summary(c); !strings.Contains(s, "    observe layer4: 3 consecutive connect failures mark a server down for 30s (observe_downtime)\n") {
		t.Errorf("summary:\n%s", s)
	}
	for _, mode := range onErrors {
		c = parseOK(t, fe+"[[backend]]\nname = \"app\"\nobserve = \"layer4\"\non_error = \""+mode+"\"\n[backend.check]\n"+srv)
		if got := c.Backends[0].Observe.OnError; got != mode {
			t.Errorf("on_error %q read as %q", mode, got)
		}
	}
}

func TestObserveBad(t *testing.T) {
	srv := "[[backend.server]]\nname = \"s1\"\naddress = \"127.0.0.1:9000\"\n"
	for _, tc := range []struct{ name, toml, want string }{
		{"unknown", "observe = \"layer7\"\n", `t.toml:8: backend[0] (app).observe: unknown observe "layer7" (want "layer4", or leave it out)`},
		{"limit without observe", "error_limit = 3\n", `t.toml:8: backend[0] (app).error_limit: error_limit needs observe = "layer4"`},
		{"limit zero", "observe = \"layer4\"\nerror_limit = 0\n", "t.toml:9: backend[0] (app).error_limit: must be between 1 and 1000000, got 0"},
		{"mode", "observe = \"layer4\"\non_error = \"panic\"\n[backend.check]\n", `backend[0] (app).on_error: unknown on_error "panic"`},
		{"mode without check", "observe = \"layer4\"\non_error = \"fail-check\"\n", `on_error = "fail-check" acts on a regular check and the backend has none`},
		{"downtime with check", "observe = \"layer4\"\nobserve_downtime = \"5s\"\n[backend.check]\n", "observe_downtime: with [backend.check], a server marked down comes back when its checks pass"},
		{"downtime zero", "observe = \"layer4\"\nobserve_downtime = \"0s\"\n", `observe_downtime: bad duration "0s": must be greater than 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(fe+"[[backend]]\nname = \"app\"\n"+tc.toml+srv))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
