package main

import (
	"bytes"
	"strings"
	"testing"
)

func k(syms ...string) []frame {
	var c []frame
	for _, s := range syms {
		c = append(c, frame{sym: s, kernel: true})
	}
	return c
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chain []frame
		want  string
	}{
		{"halted", k("pv_native_safe_halt", "default_idle", "do_idle"), kindHalted},
		{"the idle loop as the CPU wakes", k("call_cpuidle", "do_idle", "cpu_startup_entry"), kindHalted},
		{"user code", append([]frame{{sym: "ringproxy/session.(*worker).complete"}}, k("x")...), kindUser},
		{"unlock under a wakeup under tcp", k("_raw_spin_unlock_irqrestore", "try_to_wake_up", "sock_def_readable", "tcp_rcv_established"), "wakeup/sched"},
		{"copy under tcp under io_recv", k("_copy_to_iter", "__skb_datagram_iter", "tcp_recvmsg_locked", "io_recv", "io_issue_sqe"), "tcp/ip"},
		{"io_uring's own", k("__io_submit_flush_completions", "io_submit_sqes", "__do_sys_io_uring_enter"), "io_uring"},
		{"fd lookup", k("fget", "io_file_get_normal", "io_submit_sqes"), "syscall"},
		{"epoll callback under tcp", k("ep_poll_callback", "__wake_up_common", "sock_def_readable"), "epoll"},
		{"syscall layer above tcp", k("__sys_sendto", "__x64_sys_sendto", "do_syscall_64"), "syscall"},
		{"timer interrupt", k("hrtimer_interrupt", "__sysvec_apic_timer_interrupt"), "timer/irq"},
		{"softirq in the idle task", k("handle_softirqs", "irq_exit_rcu", "do_idle"), "tcp/ip"},
		{"nothing named", k("damon_pa_batch_lock", "kdamond_fn"), kindOther},
		{"kernel frames stop at user space", append(k("memset_orig"), frame{sym: "runtime.mallocgc"}, frame{sym: "tcp_x", kernel: true}), kindOther},
		{"empty", nil, kindOther},
	} {
		if got := classify(tc.chain); got != tc.want {
			t.Errorf("%s: classify = %q, want %q", tc.name, got, tc.want)
		}
	}
}

const script = `rp-head  250000 
	ffffffff81 tcp_ack+0x12 ([kernel.kallsyms])
	ffffffff82 tcp_rcv_established+0x3 ([kernel.kallsyms])

swapper  250000 
	ffffffff83 pv_native_safe_halt+0x1 ([kernel.kallsyms])

rp-head  500000 
	4a5b ringproxy/session.(*worker).complete+0x10 (/tmp/rp-head)

my proxy  250000 
	ffffffff84 io_poll_task_func+0x9 ([kernel.kallsyms])
	ffffffff85 [unknown] ([kernel.kallsyms])
`

func TestRead(t *testing.T) {
	p, err := read(strings.NewReader(script))
	if err != nil {
		t.Fatal(err)
	}
	if p.samples != 4 {
		t.Fatalf("samples = %d, want 4", p.samples)
	}
	want := map[string]int64{"tcp/ip": 250000, kindHalted: 250000, kindUser: 500000, "io_uring": 250000}
	for name, v := range want {
		if p.ns[name] != v {
			t.Errorf("%s: %d ns, want %d (all: %v)", name, p.ns[name], v, p.ns)
		}
	}
	var out bytes.Buffer
	p.report(&out, 1000, "req")
	// busy 1 ms over 1000 requests: 1 µs each, 0.25 shared (tcp), 0.75 own.
	for _, s := range []string{"busy 1.00 µs/req", "shared with any proxy 0.25 (25.0%)", "the proxy's own 0.75 (75.0%)", "halted 0.25 µs/req"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}

func TestReadRefusesOtherFormats(t *testing.T) {
	// Without the period field every header line is just the command.
	if _, err := read(strings.NewReader("rp-head \n\tffff tcp_ack ([kernel.kallsyms])\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v, want a line 1 error", err)
	}
}
