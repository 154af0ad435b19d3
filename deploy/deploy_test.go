package deploy

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	// and keep files across restarts only in its StateDirectory.
	if f := c.Global.StateFile; f != "" && !strings.HasPrefix(f, "/var/lib/ringproxy/") {
		t.Errorf("state_file %s: outside the unit's StateDirectory /var/lib/ringproxy", f)
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

// maker runs make in the repository for one test, away from any make that
// runs the test (its MAKEFLAGS name a jobserver this one does not have).
type maker struct {
	make string
	env  []string
	bin  string // where make build puts the binary
}

func newMaker(t *testing.T) *maker {
	t.Helper()
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			env = append(env, kv)
		}
	}
	return &maker{make: mk, env: append(env, "GO="+goBin), bin: filepath.Join(t.TempDir(), "ringproxy")}
}

// run runs make with args in the repository root and returns its output.
func (m *maker) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(m.make, append([]string{"-C", "..", "BIN=" + m.bin}, args...)...)
	cmd.Env = m.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// filesUnder lists the files and links under root, relative to it.
func filesUnder(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// installed is what make install puts under DESTDIR for PREFIX=/usr/local,
// each with the file it copies ("" for the binary).
func installed(t *testing.T) map[string]string {
	t.Helper()
	doc := "usr/local/share/doc/ringproxy/"
	want := map[string]string{
		"usr/local/bin/ringproxy":                        "",
		"usr/local/lib/systemd/system/ringproxy.service": "deploy/ringproxy.service",
		"usr/local/lib/sysctl.d/60-ringproxy.conf":       "deploy/sysctl.d/60-ringproxy.conf",
		"etc/ringproxy/ringproxy.toml":                   "deploy/ringproxy.toml",
		doc + "README.md":                                "README.md",
		doc + "README.deploy.md":                         "deploy/README.md",
		doc + "default.toml":                             "cmd/ringproxy/config/default.toml",
		doc + "keepalived.conf":                          "deploy/keepalived/keepalived.conf",
		doc + "60-ringproxy-nonlocal-bind.conf":          "deploy/keepalived/60-ringproxy-nonlocal-bind.conf",
	}
	examples, _ := filepath.Glob("examples/*.toml")
	for _, e := range examples {
		want[doc+e] = "deploy/" + e
	}
	return want
}

// make install puts each file in place with its mode, a binary that
// checks the config it installed, and keeps an edited config on a second
// install; make uninstall then leaves nothing but that config.
func TestMakeInstallThenUninstallLeavesOnlyTheConfig(t *testing.T) {
	m := newMaker(t)
	dest := t.TempDir()
	m.run(t, "install", "DESTDIR="+dest)

	want := installed(t)
	if got, want := filesUnder(t, dest), slices.Sorted(maps.Keys(want)); !slices.Equal(got, want) {
		t.Fatalf("make install put\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for rel, src := range want {
		st, err := os.Stat(filepath.Join(dest, rel))
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if src == "" {
			mode = 0o755
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", rel, st.Mode().Perm(), mode)
		}
		if src == "" {
			continue
		}
		if !bytes.Equal(readFile(t, filepath.Join(dest, rel)), readFile(t, filepath.Join("..", src))) {
			t.Errorf("%s differs from %s", rel, src)
		}
	}

	conf := filepath.Join(dest, "etc/ringproxy/ringproxy.toml")
	out, err := exec.Command(filepath.Join(dest, "usr/local/bin/ringproxy"), "check", "-c", conf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("installed ringproxy check -c installed config: %v\n%s", err, out)
	}

	edited := append(readFile(t, conf), "# the operator's edit\n"...)
	os.WriteFile(conf, edited, 0o644)
	m.run(t, "-o", "build", "install", "DESTDIR="+dest) // the binary is built already
	if got := readFile(t, conf); !bytes.Equal(got, edited) {
		t.Fatal("a second make install overwrote the edited config")
	}

	if out := m.run(t, "uninstall", "DESTDIR="+dest); !strings.Contains(out, "kept "+conf) {
		t.Errorf("make uninstall does not say it kept the config:\n%s", out)
	}
	if got := filesUnder(t, dest); !slices.Equal(got, []string{"etc/ringproxy/ringproxy.toml"}) {
		t.Fatalf("after make uninstall: %v, want only the config", got)
	}
	if got := readFile(t, conf); !bytes.Equal(got, edited) {
		t.Fatal("make uninstall changed the config")
	}
}

// The unit and the sysctl file go where systemd looks for that PREFIX:
// the distribution's directories for /usr, /usr/local/lib for /usr/local,
// /etc for any other; uninstall removes them from there, and the unit's
// paths name PREFIX.
func TestMakeInstallDirectoriesFollowPrefix(t *testing.T) {
	pkgConfig := func(variable, fallback string) string {
		out, err := exec.Command("pkg-config", "--variable="+variable, "systemd").Output()
		if v := strings.TrimSpace(string(out)); err == nil && v != "" {
			return v
		}
		return fallback
	}
	m := newMaker(t)
	m.run(t, "build")
	for _, tc := range []struct{ prefix, unitDir, sysctlDir string }{
		{"/usr", pkgConfig("systemdsystemunitdir", "/usr/lib/systemd/system"), pkgConfig("sysctldir", "/usr/lib/sysctl.d")},
		{"/opt/ringproxy", "/etc/systemd/system", "/etc/sysctl.d"},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			dest := t.TempDir()
			m.run(t, "-o", "build", "install", "DESTDIR="+dest, "PREFIX="+tc.prefix)
			unit, err := os.ReadFile(filepath.Join(dest, tc.unitDir, "ringproxy.service"))
			if err != nil {
				t.Fatalf("unit not in %s: %v", tc.unitDir, err)
			}
			if _, err := os.Stat(filepath.Join(dest, tc.sysctlDir, "60-ringproxy.conf")); err != nil {
				t.Errorf("sysctl file not in %s: %v", tc.sysctlDir, err)
			}
			start := unitValue(t, string(unit), "ExecStart")
			if want := tc.prefix + "/bin/ringproxy run "; !strings.HasPrefix(start, want) || strings.Contains(string(unit), "/usr/local/") {
				t.Errorf("unit for PREFIX=%s: ExecStart=%s, want %s...; and no /usr/local/ left", tc.prefix, start, want)
			}
			if _, err := os.Stat(filepath.Join(dest, tc.prefix, "bin/ringproxy")); err != nil {
				t.Error(err)
			}
			m.run(t, "uninstall", "DESTDIR="+dest, "PREFIX="+tc.prefix)
			if got := filesUnder(t, dest); !slices.Equal(got, []string{"etc/ringproxy/ringproxy.toml"}) {
				t.Fatalf("after make uninstall: %v, want only the config", got)
			}
		})
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
