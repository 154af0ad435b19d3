package ring

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The loop spins once most of its recent waits were short, stops once
// most were long, and never spins with the limit at 0.
func TestBusyPollFollowsWaits(t *testing.T) {
	b := busyPoll{limit: 50 * time.Microsecond, trial: spinTrial{on: true}}
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
	off := busyPoll{trial: spinTrial{on: true}}
	for i := 0; i < 50; i++ {
		off.observe(0)
	}
	if off.spins() {
		t.Error("a loop with busy polling off spins")
	}
}

// trialLoad is a loop's traffic as a trial sees it: the bytes/s it
// receives and the share of its thread's CPU, sleeping and spinning.
type trialLoad struct {
	offRate, onRate float64 // bytes/s
	offBusy, onBusy float64 // CPU share
}

const trialRecvSize = 100 // bytes per receive in a trialLoad

// play runs l for d from *now in 1 ms steps, each a pass of the loop's
// Wait, and says what share of the steps spun. The score gate is open:
// this is the trial's part of the decision.
func (l trialLoad) play(b *busyPoll, now *int64, at *trialSample, d time.Duration) float64 {
	const step = time.Millisecond
	spun := 0
	n := int(d / step)
	for i := 0; i < n; i++ {
		b.score = scoreOne
		rate, busy := l.offRate, l.offBusy
		if b.spins() {
			rate, busy = l.onRate, l.onBusy
			spun++
		}
		*now += int64(step)
		at.wall = *now
		at.cpu += int64(busy * float64(step))
		bytes := uint64(rate * step.Seconds())
		at.bytes += bytes
		at.recvs += bytes / trialRecvSize
		if b.trial.due(*now, at.recvs) {
			b.trial.advance(*now, *at)
		}
	}
	return float64(spun) / float64(n)
}

// Loads as measured on the VM of issue #15 through wrk and nginx (2.6× at
// one connection, 1.2× at four, 1.05× at 16): spinning pays for the first
// two.
var (
	oneConn      = trialLoad{offRate: 5e6, onRate: 13e6, offBusy: 0.4, onBusy: 1}
	fourConns    = trialLoad{offRate: 31e6, onRate: 37e6, offBusy: 0.7, onBusy: 1}
	sixteenConns = trialLoad{offRate: 44e6, onRate: 46e6, offBusy: 0.8, onBusy: 1}
	fixedRate    = trialLoad{offRate: 30e6, onRate: 30e6, offBusy: 0.66, onBusy: 1}
	// Twice the rate, but for over twice the thread's CPU per byte.
	idleProxy = trialLoad{offRate: 5e6, onRate: 12e6, offBusy: 0.2, onBusy: 1}
	noTraffic = trialLoad{offBusy: 0.01, onBusy: 0.02}
)

// The trial spins where spinning makes bytes come at least spinGain times
// as fast for at most spinCPU times the CPU per byte, and nowhere else; a
// steady load pays for a trial less and less often.
func TestSpinTrialJudges(t *testing.T) {
	for _, c := range []struct {
		name    string
		load    trialLoad
		pays    bool
		maxSpun float64 // share of the time in trials' on windows
	}{
		{"one connection", oneConn, true, 1},
		{"four connections", fourConns, true, 1},
		{"sixteen connections", sixteenConns, false, 0.02},
		{"fixed rate", fixedRate, false, 0.02},
		{"idle proxy", idleProxy, false, 0.02},
		// Tried every idleHold; a wait spins at most the limit of it.
		{"no traffic", noTraffic, false, 0.05},
	} {
		b := busyPoll{limit: 50 * time.Microsecond}
		var now int64 = 1e9
		var at trialSample
		c.load.play(&b, &now, &at, 2*time.Second)
		if b.trial.on != c.pays {
			t.Errorf("%s: after 2 s spinning pays = %v, want %v", c.name, b.trial.on, c.pays)
		}
		spun := c.load.play(&b, &now, &at, 30*time.Second)
		if c.pays && spun < 0.95 {
			t.Errorf("%s: spun %.0f%% of a steady 30 s, want almost all", c.name, 100*spun)
		}
		if !c.pays && spun > c.maxSpun {
			t.Errorf("%s: spun %.1f%% of a steady 30 s in trials, want at most %.0f%%", c.name, 100*spun, 100*c.maxSpun)
		}
		if c.name != "no traffic" && b.trial.hold != maxHold {
			t.Errorf("%s: hold %v after 30 s of the same answer, want %v", c.name, b.trial.hold, maxHold)
		}
	}
}

// A load that changes is judged again within a hold: the one that paid
// stops spinning, and traffic after idleness is judged as it comes.
func TestSpinTrialFollowsTheLoad(t *testing.T) {
	b := busyPoll{limit: 50 * time.Microsecond}
	var now int64 = 1e9
	var at trialSample
	oneConn.play(&b, &now, &at, 30*time.Second)
	if !b.trial.on {
		t.Fatal("one connection: spinning does not pay")
	}
	for took := time.Duration(0); b.trial.on; took += 100 * time.Millisecond {
		if took > maxHold+4*trialWindow {
			t.Fatalf("the load became sixteen connections %v ago, and spinning still pays", took)
		}
		sixteenConns.play(&b, &now, &at, 100*time.Millisecond)
	}
	noTraffic.play(&b, &now, &at, time.Minute)
	if b.trial.on || !b.trial.idle {
		t.Fatalf("a minute without traffic: pays %v, idle %v", b.trial.on, b.trial.idle)
	}
	oneConn.play(&b, &now, &at, 150*time.Millisecond)
	if !b.trial.on {
		t.Error("one connection after idleness: not judged within 150 ms")
	}
	noTraffic.play(&b, &now, &at, time.Minute)
	sixteenConns.play(&b, &now, &at, 150*time.Millisecond) // a first trial that misjudges
	if b.trial.on || b.trial.hold != minHold {
		t.Fatalf("first trial of sixteen connections: pays %v, hold %v; want false, %v", b.trial.on, b.trial.hold, minHold)
	}
	oneConn.play(&b, &now, &at, minHold+150*time.Millisecond)
	if !b.trial.on {
		t.Errorf("one connection %v after a first trial that said no: spinning does not pay", minHold+150*time.Millisecond)
	}
	for i, w := range b.trial.win { // traffic starts a trial early, not its windows
		if w.wall < int64(trialWindow) {
			t.Errorf("window %d of the trial after idleness lasted %v, want %v", i, time.Duration(w.wall), trialWindow)
		}
	}
}

// window is what a trial window of l's traffic takes, spinning or not.
func (l trialLoad) window(spinning bool) trialSample {
	rate, busy := l.offRate, l.offBusy
	if spinning {
		rate, busy = l.onRate, l.onBusy
	}
	bytes := uint64(rate * trialWindow.Seconds())
	return trialSample{wall: int64(trialWindow), cpu: int64(busy * float64(trialWindow)), bytes: bytes, recvs: bytes / trialRecvSize}
}

// Both pairs of windows must say that spinning pays: one off window that
// the hypervisor stalled (it received a tenth of its bytes) does not make
// sixteen connections look like one.
func TestSpinTrialNeedsBothPairs(t *testing.T) {
	stalled := sixteenConns.window(false)
	stalled.bytes /= 10
	stalled.recvs /= 10
	tr := spinTrial{win: [4]trialSample{stalled, sixteenConns.window(true), sixteenConns.window(true), sixteenConns.window(false)}}
	if tr.decide(); tr.on {
		t.Error("sixteen connections, one off window stalled: spinning pays")
	}
	tr = spinTrial{win: [4]trialSample{oneConn.window(false), oneConn.window(true), oneConn.window(true), oneConn.window(false)}}
	if tr.decide(); !tr.on {
		t.Error("one connection: spinning does not pay")
	}
}

// A trial's off windows never spin and its on windows always do; between
// trials the answer spins only while the recent waits were short.
func TestSpinTrialStages(t *testing.T) {
	b := busyPoll{limit: 50 * time.Microsecond}
	for _, c := range []struct {
		stage trialStage
		on    bool
		score int32
		spins bool
	}{
		{trialOffA, true, scoreOne, false},
		{trialOffB, true, scoreOne, false},
		{trialOnA, false, 0, true},
		{trialOnB, false, 0, true},
		{trialHolding, true, scoreOne, true},
		{trialHolding, true, 0, false},
		{trialHolding, false, scoreOne, false},
	} {
		b.trial.stage, b.trial.on, b.score = c.stage, c.on, c.score
		if got := b.spins(); got != c.spins {
			t.Errorf("stage %d, answer %v, score %d: spins %v, want %v", c.stage, c.on, c.score, got, c.spins)
		}
	}
	off := busyPoll{trial: spinTrial{stage: trialOnA}}
	if off.spins() {
		t.Error("busy polling off, and a trial's on window spins")
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
	// A collection stops the spinning thread too (its goroutine is
	// preempted, and a locked thread sleeps until it runs again).
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const limit = 200 * time.Millisecond // far above any scheduling delay of the writer
	u := newBusyPollUring(t, 64, limit)
	u.poll.trial = spinTrial{on: true, until: math.MaxInt64} // spinning pays, no trial: the score alone decides
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
	idle := func() (cpu, took time.Duration) {
		cpu0, start := threadCPU(t), time.Now()
		if got, err := u.Wait(3*limit, out); err != nil || got != 0 {
			t.Fatalf("idle wait: %d completions, %v", got, err)
		}
		return threadCPU(t) - cpu0, time.Since(start)
	}
	cpu, took := idle()
	if took < 3*limit-10*time.Millisecond {
		u.poll.observe(0)  // make up for the miss the cut wait counted
		cpu, took = idle() // once more: a signal may end a sleep early (EINTR)
	}
	if took < 3*limit-10*time.Millisecond {
		t.Errorf("idle wait of %v returned after %v", 3*limit, took)
	}
	if cpu < limit/2 || cpu > limit+limit/2 {
		t.Errorf("idle wait: the thread used %v of CPU in %v; want about the limit, %v", cpu, took, limit)
	}

	for i := 0; i < 12; i++ { // learn: every wait is long
		u.poll.observe(time.Second)
	}
	cpu0 := threadCPU(t)
	if slept := receive(50 * time.Millisecond); slept == 0 {
		t.Error("a loop whose waits were long did not sleep")
	}
	if cpu := threadCPU(t) - cpu0; cpu > 20*time.Millisecond {
		t.Errorf("a loop whose waits were long used %v of CPU waiting 50 ms: it spun", cpu)
	}
}

// Busy polling leaves the ring's setup as it was: the kernel need not
// flag each batch of deferred work for a loop that spins (spin enters the
// ring instead).
func TestBusyPollKeepsTheSetup(t *testing.T) {
	var setup [2]uint32
	for i, poll := range []time.Duration{0, 50 * time.Microsecond} {
		u := newBusyPollUring(t, 8, poll)
		setup[i] = u.setup
		if u.poll.limit != poll {
			t.Errorf("busy_poll %v: limit %v", poll, u.poll.limit)
		}
	}
	if setup[0] != setup[1] {
		t.Errorf("setup flags %#x without busy polling, %#x with it", setup[0], setup[1])
	}
}

// Over real sockets: a trial's windows count the engine's receives and
// the thread's own CPU. A window that spins is busy for much of its wall
// time; one that sleeps between writes 1 ms apart is not.
func TestUringSpinTrialMeasures(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	u := newBusyPollUring(t, 64, 5*time.Millisecond)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				unix.Write(fds[1], []byte("0123456789"))
			}
		}
	}()
	out := make([]Completion, 16)
	u.Recv(fds[0], Pack(OpRecv, 1, 0))
	var bytes, recvs uint64
	started := false
	for deadline := time.Now().Add(10 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatalf("no trial ended within 10 s (stage %d)", u.poll.trial.stage)
		}
		got, err := u.Wait(100*time.Millisecond, out)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range out[:got] {
			if c.UD.Op() != OpRecv || c.Res <= 0 {
				t.Fatalf("completion %+v: want a receive", c)
			}
			bytes += uint64(c.Res)
			recvs++
			if id, ok := c.Buffer(); ok {
				u.ReleaseBuffer(id)
			}
			if !c.More() {
				u.Recv(fds[0], Pack(OpRecv, 1, 0))
			}
		}
		if u.poll.trial.stage != trialHolding {
			started = true
		} else if started {
			break
		}
	}
	if u.rx.bytes != bytes || u.rx.recvs != recvs {
		t.Errorf("the trial counted %d bytes in %d receives, the loop got %d in %d", u.rx.bytes, u.rx.recvs, bytes, recvs)
	}
	for i, w := range u.poll.trial.win {
		if w.wall < int64(trialWindow) || w.recvs == 0 || w.bytes < w.recvs {
			t.Errorf("window %d: %+v; want a window's wall time and the receives in it", i, w)
		}
	}
	win := u.poll.trial.win
	off := trialSample{wall: win[0].wall + win[3].wall, cpu: win[0].cpu + win[3].cpu}
	on := trialSample{wall: win[1].wall + win[2].wall, cpu: win[1].cpu + win[2].cpu}
	if off.cpu > off.wall/4 {
		t.Errorf("off windows: the thread used %v of CPU in %v: it spun", time.Duration(off.cpu), time.Duration(off.wall))
	}
	if on.cpu < 2*off.cpu || on.cpu < on.wall/8 {
		t.Errorf("on windows: the thread used %v of CPU in %v, off windows %v: it did not spin",
			time.Duration(on.cpu), time.Duration(on.wall), time.Duration(off.cpu))
	}
}
