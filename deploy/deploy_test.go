package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ringproxy/cmd/ringproxy/config"
	"ringproxy/session"
)

// stopMargin is what the unit's TimeoutStopSec must leave after grace: once
// the grace is over ringproxy closes what is left and exits, well within it.
const stopMargin = 10 * time.Second

// shippedConfigs are the configs a host may run, by file: the one make
// install puts in /etc, the examples and the built-in default.
func shippedConfigs(t *testing.T) map[string]*session.Config {
	t.Helper()
	files, err := filepath.Glob("examples/*.toml")
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %v", files, err)
	}
	cfgs := map[string]*session.Config{}
	for _, f := range append(files, "ringproxy.toml") {
		c, err := config.Load(f)
		if err != nil {
			t.Fatalf("load %s: %v", f, err)
		}
		cfgs[f] = c
	}
	c, err := config.Parse("built-in default", config.Default())
	if err != nil {
		t.Fatalf("parse the built-in default: %v", err)
	}
	cfgs["built-in default"] = c
	return cfgs
}

// The installed default config passes check and listens on loopback only,
// to servers on loopback: enabling the unit exposes nothing.
func TestInstalledConfigIsCheckedAndLoopbackOnly(t *testing.T) {
	c, err := config.Load("ringproxy.toml")
	if err != nil {
		t.Fatalf("check ringproxy.toml: %v", err)
	}
	if len(c.Frontends) == 0 {
		t.Fatal("ringproxy.toml has no frontend")
	}
	for _, fe := range c.Frontends {
		for _, b := range fe.Binds {
			if !b.Addr().IsLoopback() {
				t.Errorf("frontend %s binds %s: not loopback", fe.Name, b)
			}
		}
	}
	if c.Admin.Stats.IsValid() && !c.Admin.Stats.Addr().IsLoopback() {
		t.Errorf("stats on %s: not loopback", c.Admin.Stats)
	}
	for _, be := range c.Backends {
		for _, s := range be.Servers {
			if !s.Address.Addr().IsLoopback() {
				t.Errorf("backend %s server %s at %s: not loopback", be.Name, s.Name, s.Address)
			}
		}
	}
	// DynamicUser can create files only in the unit's RuntimeDirectory.
	if c.Admin.Socket != "" && !strings.HasPrefix(c.Admin.Socket, "/run/ringproxy/") {
		t.Errorf("admin socket %s: outside the unit's RuntimeDirectory /run/ringproxy", c.Admin.Socket)
	}
}

// unitValue returns the value of key in the unit file, which must set it
// exactly once.
func unitValue(t *testing.T, unit, key string) string {
	t.Helper()
	var vals []string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			vals = append(vals, v)
		}
	}
	if len(vals) != 1 {
		t.Fatalf("ringproxy.service sets %s %d times, want once", key, len(vals))
	}
	return vals[0]
}

// systemd kills ringproxy at TimeoutStopSec: every shipped config's grace
// must end before it. (hard_stop_after does not count: SIGTERM cuts the
// generations a reload left draining at the same grace.)
func TestUnitStopTimeoutCoversGrace(t *testing.T) {
	unit, err := os.ReadFile("ringproxy.service")
	if err != nil {
		t.Fatal(err)
	}
	v := unitValue(t, string(unit), "TimeoutStopSec")
	stop, err := time.ParseDuration(v) // a plain "120s" reads the same to systemd and Go
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: write it as seconds, e.g. 120s: %v", v, err)
	}
	for name, c := range shippedConfigs(t) {
		if c.Global.Grace+stopMargin > stop {
			t.Errorf("%s: grace %s + %s is past TimeoutStopSec=%s", name, c.Global.Grace, stopMargin, stop)
		}
	}
}

// systemd-analyze verify finds nothing to say about the unit.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	unit, err := os.ReadFile("ringproxy.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify wants every Exec path to be an executable; which one does
	// not matter to it, so this test binary stands in for ringproxy.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ringproxy.service")
	os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/ringproxy"), []byte(self)), 0o644)
	out, err := exec.Command(analyze, "--man=no", "verify", path).CombinedOutput()
	// verify exits 0 on unknown keys and bad values: its output counts.
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
