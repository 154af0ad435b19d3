package session

import (
	"fmt"
	"time"

	"ringproxy/mempool"
	"ringproxy/ring"
)

// run is the worker's goroutine: lock to a CPU, build the engine there (a
// single-issuer ring belongs to the thread that made it), serve, clean up.
func (w *worker) run(ready chan<- error) {
	defer close(w.done)
	arena, eng, err := w.setup()
	ready <- err
	if err != nil {
		w.err = err
		for _, l := range w.listeners {
			ring.CloseNow(l.fd)
		}
		return
	}
	w.now = w.p.clock()
	for _, l := range w.listeners {
		w.rearm(l)
	}
	if err := ring.Run(eng, w); err != nil {
		w.err = fmt.Errorf("worker %d: %w", w.id, err)
		w.log.Error("worker loop failed", "err", err)
	}
	w.final = w.cnt
	eng.Release()
	arena.Close()
}

func (w *worker) setup() (*mempool.Arena, ring.Engine, error) {
	if err := ring.LockToCPU(w.cpu); err != nil {
		w.log.Warn("running unpinned", "err", err)
	}
	g := &w.p.cfg.Global
	arena, err := mempool.NewArena(bufferCount(g), g.BufSize)
	if err != nil {
		return nil, nil, fmt.Errorf("worker %d: %w", w.id, err)
	}
	eng, err := ring.NewEngine(g.Engine, arena)
	if err != nil {
		arena.Close()
		return nil, nil, fmt.Errorf("worker %d: %w", w.id, err)
	}
	w.eng = eng
	return arena, eng, nil
}

// bufferCount sizes a worker's pool: the configured count, or enough for
// every session to have a buffer in each direction, within [256, 1024]:
// the arena is registered (pinned) memory, and a full pool only makes
// receives wait for buffers, it loses nothing.
func bufferCount(g *Global) int {
	if g.Buffers > 0 {
		return g.Buffers
	}
	n := 256
	for n < 2*g.MaxConn && n < 1024 {
		n <<= 1
	}
	return n
}

// wake interrupts the worker's wait, from any goroutine.
func (w *worker) wake() { w.eng.Wake() }

// counters copies the worker's counters through its loop.
func (w *worker) counters() Counters {
	select {
	case <-w.done:
		return w.final
	default:
	}
	w.statsReq.Store(true)
	w.wake()
	select {
	case c := <-w.statsCh:
		return c
	case <-w.done:
		return w.final
	case <-time.After(2 * time.Second):
		return Counters{}
	}
}
