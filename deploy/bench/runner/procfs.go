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

// coreBusyTicks is the busy time of one CPU from /proc/stat: user + nice +
// system + irq + softirq + steal (everything but idle and iowait).
func coreBusyTicks(cpu int) (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseCoreBusy(string(b), cpu)
}

func parseCoreBusy(s string, cpu int) (int64, error) {
	want := "cpu" + strconv.Itoa(cpu)
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != want {
			continue
		}
		var busy int64
		for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system . . irq softirq steal
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return 0, err
			}
			busy += v
		}
		return busy, nil
	}
	return 0, fmt.Errorf("%s not in /proc/stat", want)
}

// cpuMeter measures one proxy over one run: its process CPU time and the
// busy time of the core it is pinned to.
type cpuMeter struct {
	pid, core int
	p0, c0    int64
	t0        time.Time
}

type cpuUse struct {
	Proc, Core, Wall float64 // seconds
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
	m.c0, err = coreBusyTicks(core)
	return m, err
}

func (m cpuMeter) stop() (cpuUse, error) {
	p1, err := procTicks(m.pid)
	if err != nil {
		return cpuUse{}, fmt.Errorf("proxy gone: %w", err)
	}
	c1, err := coreBusyTicks(m.core)
	if err != nil {
		return cpuUse{}, err
	}
	return cpuUse{
		Proc: float64(p1-m.p0) / clkTck,
		Core: float64(c1-m.c0) / clkTck,
		Wall: time.Since(m.t0).Seconds(),
	}, nil
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
