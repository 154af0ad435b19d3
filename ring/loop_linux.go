package ring

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Handler is what a loop drives: Complete with each batch of completions,
// Turn once per pass after them.
type Handler interface {
	// Complete handles a batch of completions that arrived together; the
	// handler reads the clock once per batch, after any sleep.
	Complete(batch []Completion)
	// Turn runs per-pass work (timers, limits) and says how long the loop
	// may sleep before the next pass, or that the loop is done.
	Turn() (sleep time.Duration, done bool)
}

// batch is how many completions one pass hands to the handler.
const batch = 256

// Run drives e for h until h says done or the engine fails.
func Run(e Engine, h Handler) error {
	out := make([]Completion, batch)
	for {
		sleep, done := h.Turn()
		if done {
			return nil
		}
		n, err := e.Wait(sleep, out)
		if err != nil {
			return fmt.Errorf("%s engine wait: %w", e.Name(), err)
		}
		if n > 0 {
			h.Complete(out[:n])
		}
	}
}

// LockToCPU locks the calling goroutine to its OS thread and, if cpu >= 0,
// pins that thread to cpu. A loop calls it before creating its engine.
func LockToCPU(cpu int) error {
	runtime.LockOSThread()
	if cpu < 0 {
		return nil
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin loop to CPU %d: %w", cpu, err)
	}
	return nil
}

// CPUs lists the CPUs this process may run on.
func CPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}
