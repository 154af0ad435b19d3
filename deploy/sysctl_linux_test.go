package deploy

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sysctlSetting is one assignment of a sysctl.d file.
type sysctlSetting struct {
	line          int
	key, value    string
	ignoreFailure bool // "-key = value": a key the kernel lacks is no error
}

// parseSysctl reads a sysctl.d file as sysctl.d(5) does: comments start
// with # or ;, keys use . or / between parts, a leading - marks a setting
// whose failure is ignored.
func parseSysctl(name, text string) ([]sysctlSetting, error) {
	var out []sysctlSetting
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: %q is not key = value", name, n, line)
		}
		s := sysctlSetting{line: n, key: strings.TrimSpace(k), value: strings.Join(strings.Fields(v), " ")}
		if rest, ok := strings.CutPrefix(s.key, "-"); ok {
			s.key, s.ignoreFailure = rest, true
		}
		s.key = strings.ReplaceAll(s.key, "/", ".")
		out = append(out, s)
	}
	return out, sc.Err()
}

// kernelValues reads sysctls, by key, from a kernel: /proc/sys here.
type kernelValues func(key string) (string, error)

func procSys(key string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	return strings.Join(strings.Fields(string(b)), " "), err
}

// Limits must never be lower than what the host runs with, nor than what
// systemd (PID 1) sets at boot before sysctl.d files apply (src/core/main.c,
// bump_file_max_and_nr_open): a static file would lower those on every
// systemd host, even when the machine running this test (a container
// without systemd) has lower values.
var limitFloors = map[string]int64{
	"fs.nr_open":                   1073741816, // INT_MAX halved to what the kernel takes
	"fs.file-max":                  math.MaxInt64,
	"net.core.somaxconn":           0,
	"net.ipv4.tcp_max_syn_backlog": 0,
	"net.core.netdev_max_backlog":  0,
}

// switches are settings that choose a behaviour, not a limit.
var switches = map[string][]string{
	"kernel.io_uring_disabled": {"0"},      // the only value that lets an unprivileged service use io_uring
	"net.ipv4.tcp_tw_reuse":    {"1", "2"}, // 0 would turn off even the loopback default
}

// optIn are settings 60-ringproxy.conf must not make for everyone.
var optIn = map[string]string{
	"net.ipv4.ip_nonlocal_bind": "keepalived/60-ringproxy-nonlocal-bind.conf",
	"net.ipv6.ip_nonlocal_bind": "keepalived/60-ringproxy-nonlocal-bind.conf",
}

const portRangeKey = "net.ipv4.ip_local_port_range"

// sysctlProblems returns what makes settings unsafe to install on the
// kernel kv reads, whose listening ports are listen (port -> who).
func sysctlProblems(settings []sysctlSetting, kv kernelValues, listen map[int]string) []string {
	var probs []string
	bad := func(s sysctlSetting, format string, args ...any) {
		probs = append(probs, fmt.Sprintf("line %d: %s = %s: %s", s.line, s.key, s.value, fmt.Sprintf(format, args...)))
	}
	for _, s := range settings {
		if file, ok := optIn[s.key]; ok {
			bad(s, "opt-in only, in %s", file)
			continue
		}
		running, err := kv(s.key)
		if errors.Is(err, fs.ErrNotExist) {
			if !s.ignoreFailure {
				bad(s, "no such sysctl on this kernel; prefix it with - if only some kernels have it")
			}
			continue
		}
		if err != nil {
			bad(s, "read the running value: %v", err)
			continue
		}
		switch floor, isLimit := limitFloors[s.key]; {
		case isLimit:
			checkLimit(s, running, floor, bad)
		case s.key == portRangeKey:
			checkPortRange(s, running, kv, listen, bad)
		case switches[s.key] != nil:
			if !slices.Contains(switches[s.key], s.value) {
				bad(s, "want one of %v", switches[s.key])
			}
		default:
			bad(s, "unclassified: add the key to limitFloors, switches or optIn in this test")
		}
	}
	return probs
}

func checkLimit(s sysctlSetting, running string, floor int64, bad func(sysctlSetting, string, ...any)) {
	v, err1 := strconv.ParseInt(s.value, 10, 64)
	cur, err2 := strconv.ParseInt(running, 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		bad(s, "not a number, or the running value %q is not", running)
	case v < cur:
		bad(s, "lower than the running value %d", cur)
	case v < floor:
		bad(s, "lower than %d, which systemd sets at boot", floor)
	}
}

// checkPortRange wants connects' source ports above every listening port,
// a range no narrower at the top than the running one, a start the kernel
// takes (not below ip_unprivileged_port_start) and ends of different parity
// (the kernel logs an error otherwise).
func checkPortRange(s sysctlSetting, running string, kv kernelValues, listen map[int]string, bad func(sysctlSetting, string, ...any)) {
	var lo, hi, curLo, curHi int
	if n, err := fmt.Sscanf(s.value, "%d %d", &lo, &hi); n != 2 || err != nil || lo > hi {
		bad(s, "want two ports, low high")
		return
	}
	if n, err := fmt.Sscanf(running, "%d %d", &curLo, &curHi); n != 2 || err != nil {
		bad(s, "running value %q is not two ports", running)
		return
	}
	for _, port := range slices.Sorted(maps.Keys(listen)) {
		if port >= lo && port <= hi {
			bad(s, "port %d (%s) is inside it: start the range above it", port, listen[port])
		}
	}
	if hi < curHi {
		bad(s, "top %d is lower than the running %d", hi, curHi)
	}
	if v, err := kv("net.ipv4.ip_unprivileged_port_start"); err == nil {
		if start, err := strconv.Atoi(v); err == nil && lo < start {
			bad(s, "the kernel refuses a start below ip_unprivileged_port_start %d", start)
		}
	}
	if lo%2 == hi%2 {
		bad(s, "both ends are %s; the kernel wants them of different parity", map[bool]string{true: "even", false: "odd"}[lo%2 == 0])
	}
}

// listeningPorts are the ports the shipped configs listen on or connect to
// on this host (loopback servers), by port.
func listeningPorts(t *testing.T) map[int]string {
	t.Helper()
	ports := map[int]string{}
	for name, c := range shippedConfigs(t) {
		for _, fe := range c.Frontends {
			for _, b := range fe.Binds {
				ports[int(b.Port())] = name + " frontend " + fe.Name
			}
		}
		if c.Admin.Stats.IsValid() {
			ports[int(c.Admin.Stats.Port())] = name + " stats"
		}
		for _, be := range c.Backends {
			for _, s := range be.Servers {
				if s.Address.Addr().IsLoopback() {
					ports[int(s.Address.Port())] = name + " server " + s.Name
				}
			}
		}
	}
	return ports
}

func parseSysctlFile(t *testing.T, path string) []sysctlSetting {
	t.Helper()
	settings, err := parseSysctl(path, string(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	if len(settings) == 0 {
		t.Fatalf("%s sets nothing", path)
	}
	return settings
}

// Every setting of 60-ringproxy.conf exists on this kernel or may fail,
// lowers no limit this host or systemd sets, keeps connects off the
// shipped configs' ports, and leaves opt-in settings out.
func TestSysctlFileIsSafeOnThisHost(t *testing.T) {
	settings := parseSysctlFile(t, "sysctl.d/60-ringproxy.conf")
	for _, p := range sysctlProblems(settings, procSys, listeningPorts(t)) {
		t.Error("sysctl.d/60-ringproxy.conf " + p)
	}
}

// The keepalived file sets ip_nonlocal_bind and nothing else, to keys
// this kernel has.
func TestKeepalivedSysctlFileSetsOnlyNonlocalBind(t *testing.T) {
	for _, s := range parseSysctlFile(t, "keepalived/60-ringproxy-nonlocal-bind.conf") {
		if _, ok := optIn[s.key]; !ok || s.value != "1" {
			t.Errorf("line %d: %s = %s: want only ip_nonlocal_bind = 1", s.line, s.key, s.value)
		}
		if _, err := procSys(s.key); err != nil {
			t.Errorf("line %d: %s: %v", s.line, s.key, err)
		}
	}
}

// The checks catch what the first 60-ringproxy.conf got wrong (lines 1-5,
// on a kernel before 6.6, without io_uring_disabled), a lowered limit and
// a key nobody classified.
func TestSysctlProblemsCatchTheOldFile(t *testing.T) {
	old := `kernel.io_uring_disabled = 0
net.ipv4.ip_local_port_range = 1024 65535
fs.nr_open = 2097152
fs.file-max = 4194304
net.ipv4.ip_nonlocal_bind = 1
net.core.somaxconn = 1024
net.ipv4.tcp_fin_timeout = 15
`
	kernel := map[string]string{
		"net.ipv4.ip_local_port_range": "32768 60999", "fs.nr_open": "1048576", "fs.file-max": "2466170",
		"net.ipv4.ip_nonlocal_bind": "0", "net.core.somaxconn": "4096", "net.ipv4.tcp_fin_timeout": "60",
		"net.ipv4.ip_unprivileged_port_start": "1024",
	}
	kv := func(k string) (string, error) {
		if v, ok := kernel[k]; ok {
			return v, nil
		}
		return "", fs.ErrNotExist
	}
	settings, err := parseSysctl("old", old)
	if err != nil {
		t.Fatal(err)
	}
	probs := sysctlProblems(settings, kv, map[int]string{5432: "postgres", 80: "web"})
	for _, want := range []string{
		"line 1: kernel.io_uring_disabled = 0: no such sysctl",
		"line 2: net.ipv4.ip_local_port_range = 1024 65535: port 5432 (postgres) is inside it",
		"line 3: fs.nr_open = 2097152: lower than 1073741816, which systemd sets",
		"line 4: fs.file-max = 4194304: lower than 9223372036854775807",
		"line 5: net.ipv4.ip_nonlocal_bind = 1: opt-in only",
		"line 6: net.core.somaxconn = 1024: lower than the running value 4096",
		"line 7: net.ipv4.tcp_fin_timeout = 15: unclassified",
	} {
		if !slices.ContainsFunc(probs, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Errorf("no problem %q in\n%s", want, strings.Join(probs, "\n"))
		}
	}
	if len(probs) != 7 {
		t.Errorf("%d problems, want 7:\n%s", len(probs), strings.Join(probs, "\n"))
	}
	// The same keys right, and the range with ends of one parity.
	settings, _ = parseSysctl("fixed", "-kernel.io_uring_disabled = 0\nnet.ipv4.ip_local_port_range = 10000 65534\n")
	probs = sysctlProblems(settings, kv, map[int]string{5432: "postgres"})
	if len(probs) != 1 || !strings.Contains(probs[0], "both ends are even") {
		t.Errorf("problems %q, want the parity alone", probs)
	}
}
