package ring

import (
	"syscall"
	"time"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// flushSQ publishes the SQEs taken since the last flush to the kernel and
// says how many the kernel has not consumed yet. giouring keeps it
// unexported; the build already disables the linkname check for giouring's
// own links (see the Makefile).
//
//go:linkname flushSQ github.com/pawelgaczynski/giouring.(*Ring).internalFlushSQ
func flushSQ(r *giouring.Ring) uint32

// nanotime is the runtime's monotonic clock: a spin reads it on every
// pass, and time.Now reads the wall clock too.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// getEventsArg is struct io_uring_getevents_arg.
type getEventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWait   uint32 // min_wait_usec (6.12): see enter
	ts        uint64 // *struct __kernel_timespec
}

// shortWait is the longest wait made without telling the Go scheduler.
// A wait it knows of lets sysmon hand the loop's P away after 20 µs, and
// the loop must win it back on return: under load, thousands of sysmon
// wakeups and futex handoffs a second on the loop's own core. So a loop
// first waits up to shortWait keeping its P, and only a loop that found
// nothing in that time sleeps the rest of its timeout the scheduler's way.
// Should the loop keep its P for 10 ms, sysmon preempts it, which only
// ends a wait early (EINTR).
//
// It is longer than a scheduler tick (HZ 125 and up): the wait's timer
// then expires after the tick's, so arming it and cancelling it on an
// early completion leave the CPU's timer alone. A timer due before the
// tick is programmed into the local APIC when the wait begins and again
// when it is cancelled; in a VM each is an exit to the hypervisor. With
// 1 ms, a loop serving one connection spent a third more CPU per request
// than with 4 or 8 ms (issue #15).
const shortWait = 8 * time.Millisecond

// Wait implements Engine. It returns early with the synthetic completions
// of requests that could not be queued, then with whatever the CQ holds.
func (u *Uring) Wait(timeout time.Duration, out []Completion) (int, error) {
	var now int64 // read once per wait, only by a loop that busy-polls
	if u.poll.limit > 0 {
		now = nanotime()
		u.trialStep(now)
	}
	u.bufs.publish()
	n := copy(out, u.synth)
	u.synth = u.synth[:copy(u.synth, u.synth[n:])]
	sends := u.sends
	u.sends = 0
	if n > 0 || u.ring.CQReady() > 0 {
		timeout = 0
	}
	if timeout <= 0 {
		if err := u.enter(0, 0, 0); err != nil {
			return n, err
		}
		return n + u.reap(out[n:]), nil
	}
	nr, first := u.batch.plan(timeout)
	if nr == 1 && u.poll.limit > 0 {
		got, err := u.waitPolling(now, timeout, out[n:])
		return n + got, err
	}
	if !u.minWait || u.batch.window <= 0 || nr == 1 {
		got, err := u.waitTwice(nr, first, timeout, out[n:])
		return n + got, err
	}
	got, err := u.waitMin(nr+sends, timeout, out[n:])
	return n + got, err
}

// waitMin waits with the kernel's minimum wait (Linux 6.12): up to the
// batch window for nr completions, then until the first one. A loop
// batching counts the sends just queued in nr: on loopback and with room
// in the socket, a send completes as it is submitted, so its completion
// is in the CQ before the wait begins. A loop that is not batching
// (nr 1) does not: holding its sends' completions would arm the window's
// timer on every wait, and a peer slower than the window (a round trip
// over 50 µs) would wake it for them anyway, a timer interrupt later.
// Taking them at once costs one io_uring_enter that does not sleep.
func (u *Uring) waitMin(nr uint32, timeout time.Duration, out []Completion) (int, error) {
	first := min(timeout, max(shortWait, u.batch.window))
	return u.waitThen(nr, first, min(u.batch.window, first), timeout, out)
}

// waitPolling waits for one completion, spinning first if the loop's
// busy polling says so (busyPoll). Requests still to submit go with the
// sleep: a send on loopback completes as it is submitted, so that wait
// returns at once. start is when the wait began.
func (u *Uring) waitPolling(start int64, timeout time.Duration, out []Completion) (int, error) {
	if u.ring.SQReady() == 0 && u.poll.spins() {
		found, err := u.spin(start, min(u.poll.limit, timeout))
		if err != nil {
			return 0, err
		}
		if found {
			u.poll.observe(time.Duration(nanotime() - start))
			return u.reap(out), nil
		}
	}
	got, err := u.waitTwice(1, timeout, timeout, out)
	// A wait that ended on its deadline under the limit says nothing.
	if waited := time.Duration(nanotime() - start); got > 0 || waited > u.poll.limit {
		u.poll.observe(waited)
	}
	return got, err
}

// trialStep moves the busy-poll trial on once its stage is over at now; a
// stage lasts milliseconds, so the thread's CPU clock is read that rarely.
func (u *Uring) trialStep(now int64) {
	if u.poll.trial.due(now, u.rx.recvs) {
		_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &u.cpuTs)
		u.rx.cpu, u.rx.wall = u.cpuTs.Nano(), now
		u.poll.trial.advance(now, u.rx)
	}
}

// spin polls for a completion until d has passed since start. Each pass
// enters the kernel without waiting: with DEFER_TASKRUN (or COOP_TASKRUN)
// a peer's data waits as task work that only a call into the ring turns
// into a completion. A flag in the SQ ring could say when (TASKRUN_FLAG),
// but the kernel would then set and clear it for every batch, spinning
// or not.
func (u *Uring) spin(start int64, d time.Duration) (bool, error) {
	for u.ring.CQReady() == 0 {
		if time.Duration(nanotime()-start) >= d {
			return false, nil
		}
		if err := u.enter(0, 0, 0); err != nil {
			return false, err
		}
	}
	return true, nil
}

// waitTwice waits where the kernel has no minimum wait: for nr
// completions until first, then, if none came, for one until timeout. A
// busy loop's next completion is near: the first wait keeps the P.
func (u *Uring) waitTwice(nr uint32, first, timeout time.Duration, out []Completion) (int, error) {
	if nr == 1 {
		first = min(first, shortWait)
	}
	return u.waitThen(nr, first, 0, timeout, out)
}

// waitThen waits for nr completions until first (with minWait, see
// enter), then, if none came, for one until timeout.
func (u *Uring) waitThen(nr uint32, first, minWait, timeout time.Duration, out []Completion) (int, error) {
	if err := u.enter(nr, first, minWait); err != nil {
		return 0, err
	}
	got := u.reap(out)
	if got == 0 && first < timeout {
		if err := u.enter(1, timeout-first, 0); err != nil {
			return 0, err
		}
		got = u.reap(out)
	}
	return got, nil
}

// enter submits and, when timeout > 0, sleeps until nr completions are
// ready or the deadline passes; with minWait > 0, once minWait has passed
// it returns as soon as one is. With DEFER_TASKRUN, completions are only
// produced inside this call, so it always asks for events.
func (u *Uring) enter(nr uint32, timeout, minWait time.Duration) error {
	submit := flushSQ(u.ring)
	flags := uint32(giouring.EnterGetEvents|giouring.EnterExtArg) | u.enterFlags
	u.arg.ts = 0
	u.arg.minWait = 0
	if timeout > 0 {
		u.ts = syscall.NsecToTimespec(int64(timeout))
		u.arg.ts = uint64(uintptr(unsafe.Pointer(&u.ts)))
		u.arg.minWait = uint32(minWait / time.Microsecond)
	} else {
		nr = 0
	}
	call := unix.Syscall6
	if timeout <= shortWait {
		call = unix.RawSyscall6
	}
	_, _, errno := call(unix.SYS_IO_URING_ENTER, uintptr(u.enterFd), uintptr(submit), uintptr(nr),
		uintptr(flags), uintptr(unsafe.Pointer(&u.arg)), unsafe.Sizeof(u.arg))
	switch errno {
	case 0, unix.ETIME, unix.EINTR, unix.EAGAIN, unix.EBUSY:
		return nil
	}
	return errno
}

// reap copies ready CQEs into out, advancing the CQ past each. Wake reads
// are re-armed here; close results are dropped.
func (u *Uring) reap(out []Completion) int {
	n := 0
	for n < len(out) {
		cqe, err := u.ring.PeekCQE()
		if err != nil || cqe == nil {
			break
		}
		c := Completion{UD: UserData(cqe.UserData), Res: cqe.Res, Flags: cqe.Flags}
		u.ring.CQAdvance(1)
		switch c.UD.Op() {
		case OpClose:
			continue
		case OpWake:
			u.armWake()
		case OpRecv:
			if c.Res > 0 {
				u.rx.bytes += uint64(c.Res)
				u.rx.recvs++
			}
		}
		out[n] = c
		n++
	}
	return n
}
