package session

import (
	"runtime"
	"sync"
)

// A worker loop keeps its P (the Go scheduler's right to run Go code)
// through its short waits (see ring's shortWait): under load it holds it
// almost all the time. With GOMAXPROCS equal to the number of loops, the
// control plane (admin socket, stats, health checks, the log writer) then
// runs only when sysmon preempts a loop, every 10 ms or so: /metrics took
// 68-115 ms and a health check could time out against a good server. So
// the process runs with one P more than the loops of every generation
// alive, and gives it back as generations exit.
var loopProcs struct {
	mu    sync.Mutex
	loops int // worker loops of every generation running
	base  int // GOMAXPROCS before the first generation started
}

// controlProcs are the Ps kept for everything that is not a worker loop.
const controlProcs = 1

// addLoops counts n more (or, negative, fewer) worker loops and sets
// GOMAXPROCS to leave controlProcs free of them.
func addLoops(n int) {
	loopProcs.mu.Lock()
	defer loopProcs.mu.Unlock()
	if loopProcs.base == 0 {
		loopProcs.base = runtime.GOMAXPROCS(0)
	}
	loopProcs.loops += n
	want := max(loopProcs.base, loopProcs.loops+controlProcs)
	if runtime.GOMAXPROCS(0) != want {
		runtime.GOMAXPROCS(want)
	}
}
