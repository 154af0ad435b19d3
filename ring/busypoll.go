package ring

import "time"

// busyPoll lets a loop that is about to sleep poll its rings for a short
// while first, when its recent waits say the next completion is that
// near. Every sleep costs a task switch out and back, and in a VM an idle
// vCPU halts and must be woken by an interrupt from the host: on the
// 2-vCPU VM of issue #15 a sleep and its wakeup cost about 10 µs of the
// proxy's own CPU, and the wakeup's latency dwarfs a loopback round trip.
// A spin that finds work within the limit saves both; one that does not
// wastes at most the limit before the loop sleeps as it would have.
//
// It learns from every wait, spun or slept: a wait that ended within the
// limit is a hit. The loop spins only while at least half of its recent
// waits were hits, so a loop whose peers answer slowly (one connection
// to a distant server, an idle proxy) never spins, and one that spins in
// vain stops within a few waits.
type busyPoll struct {
	limit time.Duration // longest spin; 0: off
	score int32         // recent hit rate, in 1/scoreOne: an EWMA over about 8 waits
}

const (
	scoreOne   = 1 << 10
	scoreShift = 3 // the EWMA's weight of a new wait: 1/8
)

// spins says whether the loop should spin before its next sleep.
func (b *busyPoll) spins() bool { return b.limit > 0 && b.score >= scoreOne/2 }

// observe records how long a wait took until its first completion.
func (b *busyPoll) observe(waited time.Duration) {
	hit := int32(0)
	if waited <= b.limit {
		hit = scoreOne
	}
	b.score += (hit - b.score) >> scoreShift
}
