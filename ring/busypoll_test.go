package ring

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"

	"ringproxy/mempool"
)

// The loop spins once most of its recent waits were short, stops once
// most were long, and never spins with the limit at 0.
func TestBusyPollFollowsWaits(t *testing.T) {
	b := busyPoll{limit: 50 * time.Microsecond}
	if b.spins() {
		t.Fatal("a new loop spins before any wait said it should")
	}
	short, long := 20*time.Microsecond, 2*time.Millisecond
	n := 0
	for ; !b.spins(); n++ {
		if n == 20 {
			t.Fatal("20 short waits in a row and the loop still does not spin")
		}
		b.observe(short)
	}
	if n < 3 {
		t.Errorf("the loop spins after %d short waits: one burst should not be enough", n)
	}
	for i := 0; i < 3; i++ { // a few long waits among short ones do not stop it
		b.observe(long)
		b.observe(short)
		b.observe(short)
	}
	if !b.spins() {
		t.Error("one long wait in three stopped the spinning")
	}
	for n = 0; b.spins(); n++ {
		if n == 20 {
			t.Fatal("20 long waits in a row and the loop still spins")
		}
		b.observe(long)
	}
	for i := 0; i < 10; i++ {
		b.observe(long)
	}
	if b.observe(time.Duration(0)); b.spins() {
		t.Error("one short wait after many long ones restarted the spinning")
	}
	off := busyPoll{}
	for i := 0; i < 50; i++ {
		off.observe(0)
	}
	if off.spins() {
		t.Error("a loop with busy polling off spins")
	}
}

// threadCPU is the calling thread's CPU time so far.
func threadCPU(t *testing.T) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// voluntarySwitches is how often the calling thread has slept.
func voluntarySwitches(t *testing.T) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Nvcsw
}

// Over real sockets: a loop whose waits have been short catches a
// completion that comes within the limit without sleeping; with nothing
// coming it spins at most the limit and then sleeps; and a loop whose
// waits have been long does not spin at all.
func TestUringBusyPoll(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// A collection stops the spinning thread too (its goroutine is
	// preempted, and a locked thread sleeps until it runs again).
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	a, err := mempool.NewArena(64, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const limit = 200 * time.Millisecond // far above any scheduling delay of the writer
	u, err := NewUring(UringConfig{Entries: 64, Arena: a, BusyPoll: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Release()
	if deferred := giouring.SetupDeferTaskrun | giouring.SetupCoopTaskrun; u.setup&deferred != 0 && u.setup&giouring.SetupTaskrunFlag == 0 {
		t.Fatalf("setup flags %#x: deferred task work without TASKRUN_FLAG, which a polling loop cannot see", u.setup)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	out := make([]Completion, 8)
	u.Recv(fds[0], Pack(OpRecv, 1, 0))
	if got, err := u.Wait(0, out); err != nil || got != 0 {
		t.Fatalf("arming: %d completions, %v", got, err)
	}
	// receive waits for one write made after a pause (in another
	// goroutine, so on another thread) and says how many times this
	// thread slept meanwhile.
	receive := func(pause time.Duration) int64 {
		t.Helper()
		// The writer runs on a thread of its own before the wait begins,
		// and this goroutine starts a fresh time slice: else, on a busy
		// machine, the writer may wait for this P, or sysmon preempt the
		// spinning goroutine after 10 ms, and a locked thread sleeps then.
		ready := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			close(ready)
			time.Sleep(pause)
			unix.Write(fds[1], []byte("x"))
		}()
		<-ready
		runtime.Gosched()
		before := voluntarySwitches(t)
		got, err := u.Wait(10*time.Second, out)
		slept := voluntarySwitches(t) - before
		if err != nil || got != 1 || out[0].Res != 1 {
			t.Fatalf("%d completions (%+v), %v; want the 1-byte receive", got, out[:got], err)
		}
		if id, ok := out[0].Buffer(); ok {
			u.ReleaseBuffer(id)
		}
		return slept
	}
	for i := 0; i < 8; i++ { // learn: every wait is short
		u.poll.observe(0)
	}
	if !u.poll.spins() {
		t.Fatal("eight short waits and the loop does not spin")
	}
	if slept := receive(time.Millisecond); slept != 0 {
		if slept = receive(time.Millisecond); slept != 0 { // once more: anything may preempt a thread once
			t.Errorf("spinning loop, receive 1 ms later: the loop slept %d times, want 0", slept)
		}
	}

	// Nothing comes: the spin ends at the limit, then the loop sleeps.
	cpu0, start := threadCPU(t), time.Now()
	if got, err := u.Wait(3*limit, out); err != nil || got != 0 {
		t.Fatalf("idle wait: %d completions, %v", got, err)
	}
	cpu, took := threadCPU(t)-cpu0, time.Since(start)
	if took < 3*limit-10*time.Millisecond {
		t.Errorf("idle wait of %v returned after %v", 3*limit, took)
	}
	if cpu < limit/2 || cpu > limit+limit/2 {
		t.Errorf("idle wait: the thread used %v of CPU in %v; want about the limit, %v", cpu, took, limit)
	}

	for i := 0; i < 12; i++ { // learn: every wait is long
		u.poll.observe(time.Second)
	}
	cpu0 = threadCPU(t)
	if slept := receive(50 * time.Millisecond); slept == 0 {
		t.Error("a loop whose waits were long did not sleep")
	}
	if cpu := threadCPU(t) - cpu0; cpu > 20*time.Millisecond {
		t.Errorf("a loop whose waits were long used %v of CPU waiting 50 ms: it spun", cpu)
	}
}

// Without busy polling a ring is set up as before the option existed:
// the kernel need not flag each batch of deferred work.
func TestNoTaskrunFlagWithoutBusyPoll(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a, err := mempool.NewArena(8, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	u, err := NewUring(UringConfig{Entries: 8, Arena: a})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Release()
	if u.setup&giouring.SetupDeferTaskrun != 0 && u.setup&giouring.SetupTaskrunFlag != 0 {
		t.Errorf("setup flags %#x: TASKRUN_FLAG with busy polling off", u.setup)
	}
	if u.poll.limit != 0 {
		t.Errorf("busy polling off, limit %v", u.poll.limit)
	}
}
