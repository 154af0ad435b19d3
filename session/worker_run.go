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
	<-w.p.begin
	w.now = w.p.clock()
	if !w.p.stopping.Load() {
		for _, l := range w.listeners {
			w.rearm(l)
		}
	}
	if err := ring.Run(eng, w); err != nil {
		w.err = fmt.Errorf("worker %d: %w", w.id, err)
		w.log.Error("worker loop failed: stopping the process", "err", err)
		w.abandon()
		w.p.fail()
	}
	w.final = w.snapshot()
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
	eng, err := ring.NewEngine(g.Engine, arena, ring.Options{BatchWait: g.BatchWait, BusyPoll: g.BusyPoll})
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

// abandon closes everything a failed loop owns without its engine: the
// listeners (or the kernel would keep queueing clients for them), parked
// clients, and live sessions, whose slots are given back.
func (w *worker) abandon() {
	for _, l := range w.listeners {
		if l.state != liClosed {
			w.setState(l, liClosed)
			ring.CloseNow(l.fd)
		}
		for l.parked.n > 0 {
			ring.CloseNow(l.parked.peek())
			l.parked.pop()
		}
	}
	for i := 0; i < w.slab.Cap(); i++ {
		s := w.slab.At(uint32(i))
		if s.state == stFree {
			continue
		}
		for p := range s.si {
			if s.si[p].fd >= 0 {
				ring.CloseNow(s.si[p].fd)
			}
		}
		w.leaveQueue(s)
		w.releaseServer(s)
		w.p.release(w, s.fe)
		s.state = stFree
	}
}

// wake interrupts the worker's wait, from any goroutine.
func (w *worker) wake() { w.eng.Wake() }

// counters copies the worker's counters through its loop. Callers take
// turns: the loop answers one request at a time.
func (w *worker) counters() workerStats {
	w.statsMu.Lock()
	defer w.statsMu.Unlock()
	select {
	case <-w.done:
		return w.final
	case <-w.statsCh: // a late answer to an ask that timed out
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
		return workerStats{}
	}
}
