package ring

import "time"

// maxBatchWant caps how many completions a loop waits for at once.
const maxBatchWant = 32

// activePerCompanion is how many active sessions it takes for a loop to
// wait for one more completion. Holding a completion while waiting for k
// more delays its session by about k gaps between completions, and with
// n sessions in a closed loop (a client that sends when it has its
// answer) that is k/n of a round trip: k ≤ n/16 keeps it near 5 %.
const activePerCompanion = 16

// batchWait lets a busy loop wait for several completions per turn instead
// of waking for each. Every wake costs a task switch (and, in a VM, an
// interrupt to an idle vCPU) on the proxy's core and a wakeup on the
// sender's: under load, waiting a few microseconds more for company turns
// many of those into one. A loop with few active sessions never waits for
// company: their peers are waiting on it.
type batchWait struct {
	window time.Duration // longest the first completion waits for company; 0: off
	want   uint32        // completions to wait for next time, 1 = no batching
	cap    uint32        // most completions worth waiting for, from the loop's active sessions
}

// setActive bounds the want by the number of sessions that had
// completions lately: company comes only from other sessions.
func (b *batchWait) setActive(n int) {
	b.cap = uint32(min(max(n/activePerCompanion, 1), maxBatchWant))
}

// plan says how many completions to wait for, and for how long, given the
// loop's own deadline.
func (b *batchWait) plan(timeout time.Duration) (uint32, time.Duration) {
	want := min(b.want, b.cap)
	if want <= 1 || b.window <= 0 {
		return 1, timeout
	}
	return want, min(timeout, b.window)
}

// learn sets the next want from a wait's harvest. A harvest that met the
// want may grow it by a half; one cut short by the window sets it to what
// came. A lone completion never grows it: light load must not pay the
// window.
func (b *batchWait) learn(asked uint32, got int) {
	if b.window <= 0 {
		return
	}
	switch n := uint32(got); {
	case n <= 1:
		b.want = 1
	case n >= asked:
		b.want = min(maxBatchWant, n+n/2)
	default:
		b.want = n
	}
}
