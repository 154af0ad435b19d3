package ring

import "time"

// busyPoll lets a loop that is about to sleep poll its rings for a short
// while first, when its recent waits say the next completion is that
// near and spinning has been measured to pay. Every sleep costs a task
// switch out and back, and in a VM an idle vCPU halts and must be woken
// by an interrupt from the host: on the 2-vCPU VM of issue #15 a sleep
// and its wakeup cost about 10 µs of the proxy's own CPU, and the
// wakeup's latency dwarfs a loopback round trip. A spin that finds work
// within the limit saves both; one that does not wastes at most the limit
// before the loop sleeps as it would have.
//
// Two gates decide. The first learns from every wait, spun or slept: a
// wait that ended within the limit is a hit, and the loop spins only
// while at least half of its recent waits were hits, so a loop whose
// peers answer slowly (one connection to a distant server, an idle proxy)
// never spins, and one that spins in vain stops within a few waits. The
// second is spinTrial: a hit still costs the CPU of its spin, which only
// pays where it saves more (a client with a handful of connections,
// whose every request waits for the proxy to wake) and not where sleeps
// were rare or cheap anyway (16 busy connections, a fixed request rate).
type busyPoll struct {
	limit time.Duration // longest spin; 0: off
	score int32         // recent hit rate, in 1/scoreOne: an EWMA over about 8 waits
	trial spinTrial
}

const (
	scoreOne   = 1 << 10
	scoreShift = 3 // the EWMA's weight of a new wait: 1/8
)

// spins says whether the loop should spin before its next sleep. A
// trial's on windows spin whatever the score: the score of a loop that
// has been sleeping counts each wakeup's latency in its waits, which
// spinning would save.
func (b *busyPoll) spins() bool {
	if b.limit <= 0 {
		return false
	}
	switch b.trial.stage {
	case trialOnA, trialOnB:
		return true
	case trialHolding:
		return b.trial.on && b.score >= scoreOne/2
	}
	return false
}

// observe records how long a wait took until its first completion.
func (b *busyPoll) observe(waited time.Duration) {
	hit := int32(0)
	if waited <= b.limit {
		hit = scoreOne
	}
	b.score += (hit - b.score) >> scoreShift
}

// spinTrial measures whether spinning pays on the loop's traffic, and
// holds the answer for a while. A trial is four windows, off, on, on, off;
// the wall time, the thread's own CPU time and the bytes received in each
// are what it judges by. Spinning pays when bytes come in at least
// spinGain times as fast with it, for at most spinCPU times the thread's
// CPU per byte: a closed-loop client waiting on the proxy's every wakeup
// (one to a few connections), not a load whose sleeps were few or overlap
// other work. Both pairs of windows (the outer and the inner) must say
// so: a load that drifts during the trial, or a hypervisor that stalls
// the vCPU through one window, then does not decide it. A hold that
// confirms the last answer doubles, up to maxHold; a first answer, or one
// that reverses the last, holds minHold, so a steady load pays for a
// trial about once every maxHold, a changed one is re-judged within
// seconds, and a client whose first trial caught its connections still
// opening is judged again a quarter of a second later.
//
// Per byte, not per completion: a loop that answers sooner may receive a
// pipelining client's requests in more, smaller pieces.
type spinTrial struct {
	stage trialStage
	until int64 // nanotime when the current stage ends; 0: at the next look
	hold  time.Duration
	on    bool // the answer held: spinning pays
	idle  bool // the last trial had too little traffic to judge
	start trialSample
	win   [4]trialSample // what each window of this trial took, in stage order
}

// trialSample is a loop's running totals at one instant, or their
// difference over a window.
type trialSample struct {
	wall  int64  // nanotime
	cpu   int64  // thread CPU time, ns
	bytes uint64 // bytes received
	recvs uint64 // receive completions
}

type trialStage uint8

const (
	trialHolding trialStage = iota // the answer applies until the next trial
	trialOffA                      // first off window
	trialOnA                       // first on window
	trialOnB                       // second on window
	trialOffB                      // second off window, then the answer
)

const (
	trialWindow = 25 * time.Millisecond
	minHold     = 250 * time.Millisecond
	maxHold     = 8 * time.Second
	idleHold    = time.Second // after a void trial; traffic ends it early (due)
	// trialRecvs is the fewest receives a window needs for its CPU per
	// byte to mean something: a loop with less traffic spends little on
	// sleeps either way.
	trialRecvs = 32
	// spinGain is how much faster bytes must come in while spinning for
	// spinning to pay. Measured on the VM of issue #15 (a trial's two
	// windows per mode, wrk through nginx or redis-benchmark): one
	// connection 2.2–4.4×, where spinning saves both CPU and latency;
	// four connections mostly 1.1–1.7×; a fixed request rate 1.0×, where
	// it would only burn CPU. Four connections pay too: a loop that
	// sleeps between their completions sleeps 0.6 times a request
	// (HAProxy, slower per event, 0.4), and each wakeup is on the
	// request's path. Spinning there served 1.17× the requests at 0.78× the p50
	// for 1.13× the CPU per request (wrk -c4), and redis-benchmark -c4
	// 1.34× the requests for the same CPU per request; 16 connections
	// and up gain under 1.05×, and stay asleep.
	spinGain = 1.15
	// spinCPU is how much more of the thread's own CPU per byte spinning
	// may take: the sleeps it saves cost more than the thread's clock
	// shows (the halt, the wakeup's interrupt).
	spinCPU = 1.5
)

// due says whether the stage has run its course at now, with recvs
// receives so far. A loop that was too idle to judge tries again as soon
// as traffic comes: a client's first seconds count too.
func (t *spinTrial) due(now int64, recvs uint64) bool {
	return now >= t.until || t.stage == trialHolding && t.idle && recvs-t.start.recvs >= 2*trialRecvs
}

// advance ends the current stage at now, given the loop's running totals.
func (t *spinTrial) advance(now int64, at trialSample) {
	if t.stage != trialHolding {
		t.win[t.stage-trialOffA] = trialSample{wall: at.wall - t.start.wall, cpu: at.cpu - t.start.cpu,
			bytes: at.bytes - t.start.bytes, recvs: at.recvs - t.start.recvs}
	}
	t.start = at
	switch t.stage {
	case trialOffB:
		t.decide()
		t.stage, t.until = trialHolding, now+int64(t.hold)
	default:
		t.stage, t.until = t.stage+1, now+int64(trialWindow)
	}
}

// decide sets the answer from the trial's windows and how long to hold it.
func (t *spinTrial) decide() {
	measured := true
	for _, w := range t.win {
		measured = measured && w.recvs >= trialRecvs && w.wall > 0 && w.cpu > 0
	}
	pays := measured && spinPays(t.win[0], t.win[1]) && spinPays(t.win[3], t.win[2])
	switch {
	case !measured:
		t.hold = idleHold
	case t.idle || t.hold == 0 || pays != t.on: // a first answer, or a new one
		t.hold = minHold
	default:
		t.hold = min(2*t.hold, maxHold)
	}
	t.on, t.idle = pays, !measured
}

// spinPays compares a window that slept with one that spun.
func spinPays(off, on trialSample) bool {
	return per(on.bytes, on.wall) >= spinGain*per(off.bytes, off.wall) &&
		per(uint64(on.cpu), int64(on.bytes)) <= spinCPU*per(uint64(off.cpu), int64(off.bytes))
}

func per(n uint64, d int64) float64 { return float64(n) / float64(d) }
