package ring

import (
	"fmt"

	"ringproxy/mempool"
)

// Engines lists the engine names, best first.
var Engines = []string{"uring", "epoll"}

// NewEngine builds the engine called name over arena, on the calling
// (locked) thread.
func NewEngine(name string, arena *mempool.Arena) (Engine, error) {
	return newEngine(name, arena, Probe())
}

func newEngine(name string, arena *mempool.Arena, f Features) (Engine, error) {
	switch name {
	case "uring":
		u, err := newUring(UringConfig{Entries: 4096, Arena: arena}, f)
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
