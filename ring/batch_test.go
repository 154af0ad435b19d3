package ring

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/mempool"
)

// The loop waits only for the company its load says is coming within
// half the window, and never for more than one completion per 4 active
// sessions: a small pool's peers are waiting on the loop.
func TestBatchWaitFollowsLoad(t *testing.T) {
	b := batchWait{window: 100 * time.Microsecond, want: 1}
	for _, c := range []struct {
		active, perSecond int
		want              uint32
	}{
		{0, 0, 1},
		{1, 1_000_000, 1},       // one session: its peer waits on us
		{7, 1_000_000, 1},       // seven: still not enough
		{16, 1_000_000, 4},      // 50 completions in 50 µs, but 16/4
		{64, 100_000, 6},        // 5 in 50 µs
		{64, 10_000, 1},         // light load: 0.5 in 50 µs
		{5000, 400_000, 21},     // 20 in 50 µs
		{5000, 100_000_000, 32}, // capped
	} {
		b.setLoad(c.active, c.perSecond)
		n, wait := b.plan(time.Second)
		if n != c.want {
			t.Errorf("%d active sessions, %d completions/s: waits for %d, want %d", c.active, c.perSecond, n, c.want)
		}
		if n > 1 && wait != b.window {
			t.Errorf("a batched wait lasts %v, want the window %v", wait, b.window)
		}
	}
	if n, wait := b.plan(20 * time.Microsecond); n != 32 || wait != 20*time.Microsecond {
		t.Errorf("a deadline sooner than the window must win: plan = %d, %v", n, wait)
	}
	off := batchWait{want: 1}
	off.setLoad(5000, 100_000_000)
	if n, wait := off.plan(time.Second); n != 1 || wait != time.Second {
		t.Errorf("batching off: plan = %d, %v; want 1, 1s", n, wait)
	}
}

// TestUringBatchWait checks the wait over real sockets: one completion
// alone returns at once; when the loop is busy, a lone completion waits
// the window for company, and a batch that is there returns at once.
func TestUringBatchWait(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a, err := mempool.NewArena(64, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const window = 300 * time.Millisecond // long enough to tell from "at once" on a loaded machine
	u, err := NewUring(UringConfig{Entries: 64, Arena: a, BatchWait: window})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Release()
	u.multiRecv = false // the test arms a receive per round
	var pairs [4][2]int
	for i := range pairs {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		pairs[i] = [2]int{fds[0], fds[1]}
	}
	out := make([]Completion, 16)
	// wait arms a receive on each of the first n pairs, writes to them, and
	// says how many completions one Wait returned and how long it took.
	wait := func(n int) (int, time.Duration) {
		t.Helper()
		for i := 0; i < n; i++ {
			u.Recv(pairs[i][0], Pack(OpRecv, uint32(i), 0))
		}
		if got, err := u.Wait(0, out); err != nil || got != 0 {
			t.Fatalf("arming: %d completions, %v", got, err)
		}
		for i := 0; i < n; i++ {
			if _, err := unix.Write(pairs[i][1], []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		got, err := u.Wait(5*time.Second, out)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range out[:got] {
			if id, ok := c.Buffer(); ok {
				u.ReleaseBuffer(id)
			}
		}
		return got, time.Since(start)
	}
	if got, took := wait(1); got != 1 || took > window/2 {
		t.Fatalf("idle loop, one completion: %d after %v; want 1 at once", got, took)
	}
	u.SetLoad(16, 1_000_000) // enough sessions and completions for a want of 4
	if got, took := wait(4); got != 4 || took > window/2 {
		t.Fatalf("busy loop, four completions ready: %d after %v; want 4 at once", got, took)
	}
	if got, took := wait(1); got != 1 || took < window*2/3 || took > 4*time.Second {
		t.Fatalf("busy loop, one completion: %d after %v; want it after about %v", got, took, window)
	}
	u.SetLoad(16, 0) // the same sessions, gone quiet
	if got, took := wait(1); got != 1 || took > window/2 {
		t.Fatalf("quiet again, one completion: %d after %v; want 1 at once", got, took)
	}
}

// A send completes as it is submitted. A loop that is not batching takes
// that completion at once: holding it for the next one would arm the
// window's timer on every wait, and a peer slower than the window would
// end the hold anyway. A batching loop does not count it towards the
// company it waits for: it returns with the receives that follow, not
// with the send alone, and no later than the window.
func TestUringWaitsPastItsSendsOnlyWhenBatching(t *testing.T) {
	if !Probe().MinWait {
		t.Skip("kernel has no min_wait_usec (Linux 6.12)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a, err := mempool.NewArena(64, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const window = 300 * time.Millisecond
	u, err := NewUring(UringConfig{Entries: 64, Arena: a, BatchWait: window})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Release()
	u.multiRecv = false
	pair := func() [2]int {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
		return [2]int{fds[0], fds[1]}
	}
	sendTo := pair()
	var in [4][2]int
	for i := range in {
		in[i] = pair()
	}
	out := make([]Completion, 16)
	const later = 50 * time.Millisecond
	// sendThenReceive sends one byte, has n receives complete later, and
	// says what the first Wait after the send returned, and when.
	sendThenReceive := func(n int) (int, time.Duration) {
		t.Helper()
		for i := 0; i < n; i++ {
			u.Recv(in[i][0], Pack(OpRecv, uint32(i), 0))
		}
		if got, err := u.Wait(0, out); err != nil || got != 0 {
			t.Fatalf("arming: %d completions, %v", got, err)
		}
		go func() {
			time.Sleep(later)
			for i := 0; i < n; i++ {
				unix.Write(in[i][1], []byte("x"))
			}
		}()
		u.Send(sendTo[0], 0, 0, 1, Pack(OpSend, 9, 0))
		start := time.Now()
		got, err := u.Wait(5*time.Second, out)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		for rest := got; rest < n+1; {
			k, err := u.Wait(5*time.Second, out[rest:])
			if err != nil || k == 0 {
				t.Fatalf("draining: %d more completions, %v", k, err)
			}
			rest += k
		}
		for _, c := range out[:n+1] {
			if id, ok := c.Buffer(); ok {
				u.ReleaseBuffer(id)
			}
		}
		unix.Read(sendTo[1], make([]byte, 16))
		return got, took
	}
	if got, took := sendThenReceive(1); got != 1 || took > later/2 {
		t.Fatalf("idle loop, a send then a receive %v later: %d completions after %v; want the send's alone, at once", later, got, took)
	}
	u.SetLoad(16, 1_000_000) // a want of 4
	if got, took := sendThenReceive(4); got != 5 || took < later*4/5 || took > window*4/5 {
		t.Fatalf("busy loop, a send then 4 receives %v later: %d completions after %v; want all 5 after about %v", later, got, took, later)
	}
}
