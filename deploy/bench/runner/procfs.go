package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// clkTck is USER_HZ, the unit of /proc/PID/stat and /proc/stat times.
var clkTck = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && v > 0 {
			return float64(v)
		}
	}
	return 100
}()

// procTicks is utime+stime of a process in clock ticks. The process line of
// /proc/PID/stat already sums every thread, live and exited.
func procTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatTicks(string(b))
}

func parseStatTicks(s string) (int64, error) {
	// The command name may hold spaces and parentheses: cut after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad stat line")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad utime/stime")
	}
	return u + st, nil
}

// cpuTicks is one line of /proc/stat, in clock ticks. Busy is user + nice
// + system + irq + softirq: everything but idle, iowait and steal. Steal
// is time the vCPU was runnable but the hypervisor ran something else; the
// kernel already leaves it out of every process's utime+stime
// (account_process_tick), so counting it as the core's busy time would
// charge a proxy for the host's other guests.
type cpuTicks struct {
	busy, steal, all int64
}

// coreTicks reads CPU cpu's line.
func coreTicks(cpu int) (cpuTicks, error) { return statTicks("cpu" + strconv.Itoa(cpu)) }

// hostTicks reads the sum over all CPUs.
func hostTicks() (cpuTicks, error) { return statTicks("cpu") }

func statTicks(want string) (cpuTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}, err
	}
	return parseCPUTicks(string(b), want)
}

// parseCPUTicks reads the line named want ("cpu" is the sum over all CPUs).
func parseCPUTicks(s, want string) (cpuTicks, error) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != want {
			continue
		}
		var v [9]int64 // v[1:]: user nice system idle iowait irq softirq steal
		for i := 1; i < 9; i++ {
			var err error
			if v[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
				return cpuTicks{}, fmt.Errorf("/proc/stat %s: %w", want, err)
			}
		}
		t := cpuTicks{busy: v[1] + v[2] + v[3] + v[6] + v[7], steal: v[8]}
		t.all = t.busy + t.steal + v[4] + v[5]
		return t, nil
	}
	return cpuTicks{}, fmt.Errorf("%s not in /proc/stat", want)
}

// cpuMeter measures one proxy over one run: its process CPU time and the
// busy time of the core it is pinned to.
type cpuMeter struct {
	pid, core int
	p0        int64
	c0        cpuTicks
	t0        time.Time
}

type cpuUse struct {
	Proc, Core, Wall float64 // seconds
	Steal            float64 // seconds of the core the host took: in neither figure
}

// Charged is what the report counts: the larger of the two, so CPU spent on
// the proxy's behalf outside its own accounting (softirq on its core) counts.
func (u cpuUse) Charged() float64 { return max(u.Proc, u.Core) }

func startCPU(pid, core int) (cpuMeter, error) {
	m := cpuMeter{pid: pid, core: core, t0: time.Now()}
	var err error
	if m.p0, err = procTicks(pid); err != nil {
		return m, err
	}
	m.c0, err = coreTicks(core)
	return m, err
}

func (m cpuMeter) stop() (cpuUse, error) {
	p1, err := procTicks(m.pid)
	if err != nil {
		return cpuUse{}, fmt.Errorf("proxy gone: %w", err)
	}
	c1, err := coreTicks(m.core)
	if err != nil {
		return cpuUse{}, err
	}
	return cpuUse{
		Proc:  float64(p1-m.p0) / clkTck,
		Core:  float64(c1.busy-m.c0.busy) / clkTck,
		Steal: float64(c1.steal-m.c0.steal) / clkTck,
		Wall:  time.Since(m.t0).Seconds(),
	}, nil
}

// cells are the CSVs' cpu_proc_s, cpu_core_s and cpu_steal_s: empty
// where nothing was measured (no proxy process).
func (u cpuUse) cells(measured bool) []string {
	if !measured {
		return []string{"", "", ""}
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	return []string{f(u.Proc), f(u.Core), f(u.Steal)}
}

// String is the progress line's account of a run's CPU.
func (u cpuUse) String() string {
	return fmt.Sprintf("process %.2fs, core %.2fs, stolen %.2fs", u.Proc, u.Core, u.Steal)
}

// rssKiB is VmRSS from /proc/PID/status.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// tcpSockets counts IPv4 TCP sockets in /proc/net/tcp whose local port is
// port and whose state is st ("0A" listen, "01" established).
func tcpSockets(port int, st string) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0
	}
	return countSockets(string(b), port, st)
}

func countSockets(table string, port int, st string) int {
	suffix := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "sl" {
			continue
		}
		if strings.HasSuffix(f[1], suffix) && f[3] == st {
			n++
		}
	}
	return n
}

func listening(port int) bool { return tcpSockets(port, "0A") > 0 }
