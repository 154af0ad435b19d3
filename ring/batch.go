package ring

import "time"

// maxBatchWant caps how many completions a loop waits for at once.
const maxBatchWant = 32

// activePerCompanion is how many active sessions it takes for a loop to
// wait for one more completion. Holding a completion while waiting for k
// more delays its session by about k gaps between completions, and with
// n sessions in a closed loop (a client that sends when it has its
// answer) that is k/n of a round trip; below 8 sessions the loop never
// waits, since their peers are waiting on it.
const activePerCompanion = 4

// soonDiv sets how soon company must be due: within window/soonDiv at
// the recent rate, so that the typical hold is well inside the window.
const soonDiv = 2

// batchWait lets a busy loop wait for several completions per turn instead
// of waking for each. Every wake costs a task switch (and, in a VM, an
// interrupt to an idle vCPU) on the proxy's core and a wakeup on the
// sender's: under load, waiting a few microseconds more for company turns
// many of those into one. It waits only for the company the load says is
// coming soon: as many completions as the recent rate brings in half the
// window, and no more than one per activePerCompanion sessions
// with recent completions. A loop with few sessions never waits: their
// peers are waiting on it.
type batchWait struct {
	window time.Duration // longest the first completion waits for company; 0: off
	want   uint32        // completions to wait for, 1 = no batching
}

// setLoad sizes the want from the loop's active sessions and its recent
// rate of completions per second.
func (b *batchWait) setLoad(active, perSecond int) {
	limit := min(max(active/activePerCompanion, 1), maxBatchWant)
	soon := int(int64(perSecond) * int64(b.window/soonDiv) / int64(time.Second))
	b.want = uint32(min(limit, 1+soon))
}

// plan says how many completions to wait for, and for how long, given the
// loop's own deadline.
func (b *batchWait) plan(timeout time.Duration) (uint32, time.Duration) {
	if b.want <= 1 || b.window <= 0 {
		return 1, timeout
	}
	return b.want, min(timeout, b.window)
}
