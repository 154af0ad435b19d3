// Command perfcat sorts the samples of a CPU's cpu-clock profile by the kind
// of work they caught, and says how much of each a request cost. It reads
// what `perf script -F comm,period,ip,sym,dso` prints for a profile recorded
// with call graphs (perf record -e cpu-clock -g -C CPU):
//
//	perf script -i FILE -F comm,period,ip,sym,dso | perfcat -n REQUESTS
//
// It exists to answer one question of issue #15: how much of a proxy's core
// is kernel work that any proxy on the same traffic pays (TCP/IP, softirq,
// wakeups, timers), and how much is the proxy's own (its code, its event
// machinery: io_uring or epoll, and the syscalls that reach them). A
// proxy's CPU per request cannot fall below the first part.
//
// A sample goes to the kind of the innermost frame of its call chain that
// names one (kinds): a spin-unlock under try_to_wake_up under
// sock_def_readable is a wakeup, a copy under tcp_recvmsg under io_recv is
// TCP. A sample whose innermost frame is in user space is the process's own
// code; one in the idle loop (its halt, or the loop around it) is the CPU
// halted; frames no kind names, innermost to outermost, are "other".
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// kind is a class of work and the symbol prefixes that name it.
type kind struct {
	name   string
	shared bool // work any proxy on the same traffic does: not the proxy's own
	prefix []string
}

const (
	kindUser   = "user"
	kindHalted = "halted"
	kindOther  = "other"
)

// kinds, in the order a frame is tried against them: the first prefix that
// matches decides. Syscall-layer frames (entry, fd lookup, __sys_sendto)
// are the proxy's own: a proxy that makes fewer calls pays less of them;
// sock_sendmsg and below are what every send costs.
var kinds = []kind{
	{name: "wakeup/sched", shared: true, prefix: []string{
		"try_to_wake_up", "ttwu_", "__schedule", "schedule", "finish_task_switch",
		"enqueue_task", "dequeue_task", "pick_next", "select_task_rq", "__wake_up",
		"wake_up_q", "default_wake_function", "autoremove_wake", "update_curr",
		"update_load", "psi_", "__smp_call", "send_call_function", "native_send_call",
		"flush_smp_call", "sched_ttwu", "set_next_entity", "put_prev_entity"}},
	{name: "io_uring", prefix: []string{"io_", "__io_", "llist_reverse_order"}},
	{name: "epoll", prefix: []string{"ep_", "do_epoll", "__x64_sys_epoll", "__do_sys_epoll"}},
	{name: "syscall", prefix: []string{
		"entry_SYSCALL", "do_syscall_64", "syscall_exit", "syscall_return", "x64_sys_call",
		"exit_to_user", "fget", "fdget", "__fget", "fput", "__fdget", "sockfd_lookup",
		"__sys_sendto", "__sys_recvfrom", "__x64_sys_", "__do_sys_", "ksys_", "vfs_read",
		"vfs_write", "sock_read_iter", "sock_write_iter"}},
	{name: "tcp/ip", shared: true, prefix: []string{
		"tcp_", "__tcp", "tcp4_", "ip_", "__ip", "inet_", "__inet", "sock_", "__sock",
		"sk_", "__sk", "skb_", "__skb", "kfree_skb", "__kfree_skb", "consume_skb",
		"__alloc_skb", "kmalloc_reserve", "lock_sock", "release_sock", "__release_sock",
		"__dev_queue", "dev_", "netif_", "__netif", "net_rx", "process_backlog", "__napi",
		"napi_", "loopback", "validate_xmit", "nf_", "_copy_to_iter", "_copy_from_iter",
		"csum", "simple_copy", "handle_softirqs", "do_softirq", "__do_softirq",
		"__local_bh_enable", "ipv4_", "raw_v4", "__copy_skb"}},
	{name: "timer/irq", shared: true, prefix: []string{
		"hrtimer", "__hrtimer", "tick_", "sysvec_", "asm_sysvec", "__sysvec", "timekeeping",
		"ktime_", "read_tsc", "clockevents", "lapic_", "irq_", "__irq", "update_process_times",
		"scheduler_tick", "sched_tick"}},
}

// haltPrefix names the idle loop: the halt, and the loop's own frames
// that a sample taken as the CPU wakes lands in (call_cpuidle, 1.3 % of a
// core that halts often). /proc/stat counts that time as idle too.
var haltPrefix = []string{"pv_native_safe_halt", "default_idle", "native_safe_halt", "arch_cpu_idle",
	"cpuidle_", "call_cpuidle", "do_idle", "cpu_startup_entry", "default_enter_idle", "acpi_idle",
	"mwait_idle", "poll_idle"}

// frame is one line of a call chain.
type frame struct {
	sym    string
	kernel bool
}

// classify names the kind of one sample from its call chain, innermost
// first.
func classify(chain []frame) string {
	if len(chain) == 0 {
		return kindOther
	}
	if !chain[0].kernel {
		return kindUser
	}
	if hasPrefix(chain[0].sym, haltPrefix) {
		return kindHalted
	}
	for _, f := range chain {
		if !f.kernel {
			break
		}
		for _, k := range kinds {
			if hasPrefix(f.sym, k.prefix) {
				return k.name
			}
		}
	}
	return kindOther
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// profile is the time the samples of each kind stand for.
type profile struct {
	ns      map[string]int64
	samples int
}

// read parses perf script output: a sample is a header line "COMM PERIOD"
// (COMM may hold spaces: PERIOD is its last field) and then one indented
// line per frame, "ADDR SYMBOL+OFF (DSO)", ended by a blank line.
func read(r io.Reader) (profile, error) {
	p := profile{ns: map[string]int64{}}
	var chain []frame
	var period int64
	inSample := false
	end := func() {
		if inSample {
			p.ns[classify(chain)] += period
			p.samples++
		}
		chain, inSample = chain[:0], false
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		switch {
		case strings.TrimSpace(s) == "":
			end()
		case s[0] != ' ' && s[0] != '\t':
			end()
			f := strings.Fields(s)
			v, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if len(f) < 2 || err != nil || v <= 0 {
				return p, fmt.Errorf("line %d: want \"COMM PERIOD\" (perf script -F comm,period,ip,sym,dso), got %q", line, s)
			}
			period, inSample = v, true
		default:
			f := strings.Fields(s)
			if len(f) < 2 {
				continue // an address perf could not name
			}
			sym, _, _ := strings.Cut(f[1], "+")
			chain = append(chain, frame{sym: sym, kernel: strings.Contains(s, "[kernel.kallsyms]")})
		}
	}
	end()
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("line %d: %w", line, err)
	}
	return p, nil
}

// report prints each kind's µs per unit (n units over the profile) and
// share of the busy time, then the busy time split into shared and own.
func (p profile) report(w io.Writer, n float64, unit string) {
	var busy, shared, own int64
	for name, v := range p.ns {
		if name == kindHalted {
			continue
		}
		busy += v
		switch {
		case isShared(name):
			shared += v
		case name != kindOther:
			own += v
		}
	}
	names := make([]string, 0, len(p.ns))
	for name := range p.ns {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return p.ns[names[i]] > p.ns[names[j]] })
	per := func(v int64) float64 { return float64(v) / 1e3 / n }
	pct := func(v int64) float64 { return 100 * float64(v) / float64(max(busy, 1)) }
	fmt.Fprintf(w, "%-14s %9s %8s\n", "kind", "µs/"+unit, "% busy")
	for _, name := range names {
		if name == kindHalted {
			continue
		}
		fmt.Fprintf(w, "%-14s %9.2f %7.1f%%\n", name, per(p.ns[name]), pct(p.ns[name]))
	}
	fmt.Fprintf(w, "busy %.2f µs/%s: shared with any proxy %.2f (%.1f%%), the proxy's own %.2f (%.1f%%); halted %.2f µs/%s; %d samples\n",
		per(busy), unit, per(shared), pct(shared), per(own), pct(own), per(p.ns[kindHalted]), unit, p.samples)
}

func isShared(name string) bool {
	for _, k := range kinds {
		if k.name == name {
			return k.shared
		}
	}
	return false
}

func main() {
	n := flag.Float64("n", 0, "units of work (requests, connections) the profile covers")
	unit := flag.String("unit", "req", "what one unit is, for the report")
	flag.Parse()
	if *n <= 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: perf script -F comm,period,ip,sym,dso -i FILE | perfcat -n UNITS [-unit req]")
		os.Exit(2)
	}
	p, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "perfcat:", err)
		os.Exit(1)
	}
	if p.samples == 0 {
		fmt.Fprintln(os.Stderr, "perfcat: no samples")
		os.Exit(1)
	}
	p.report(os.Stdout, *n, *unit)
}
