package ring

import (
	"fmt"
	"time"

	"ringproxy/mempool"
)

// Engines lists the engine names, best first.
var Engines = []string{"uring", "epoll"}

// Options tune an engine beyond its arena.
type Options struct {
	// BatchWait is how long a completion may wait for others while the
	// loop is busy (io_uring only; 0: wake for every completion).
	BatchWait time.Duration
	// BusyPoll is how long a loop about to sleep may poll its rings first
	// when its recent waits were that short (io_uring only; 0: never).
	BusyPoll time.Duration
}

// NewEngine builds the engine called name over arena, on the calling
// (locked) thread.
func NewEngine(name string, arena *mempool.Arena, o Options) (Engine, error) {
	return newEngine(name, arena, o, Probe())
}

func newEngine(name string, arena *mempool.Arena, o Options, f Features) (Engine, error) {
	switch name {
	case "uring":
		u, err := newUring(UringConfig{Entries: 4096, Arena: arena, BatchWait: o.BatchWait, BusyPoll: o.BusyPoll}, f)
		if err != nil {
			return nil, fmt.Errorf("%w; the epoll engine works on any kernel: --engine epoll", err)
		}
		return u, nil
	case "epoll":
		return NewEpoll(arena)
	}
	return nil, fmt.Errorf("unknown engine %q (want uring or epoll)", name)
}

// EngineUsable says whether engine name can run on this kernel, and why not.
func EngineUsable(name string) error {
	switch name {
	case "uring":
		return Probe().UringUsable()
	case "epoll":
		return nil
	}
	return fmt.Errorf("unknown engine %q", name)
}
