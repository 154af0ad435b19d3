package session

import (
	"time"
)

// fail ends the process's data path after a worker loop failed: running
// on with one worker short would silently drop its share of clients.
func (p *Proxy) fail() {
	p.stopping.Store(true)
	p.killing.Store(true)
	p.wakeAll()
}

// Stop makes every worker stop accepting; live sessions go on.
func (p *Proxy) Stop() {
	p.stopping.Store(true)
	p.wakeAll()
}

// Shutdown stops accepting, lets live sessions finish for up to grace,
// then aborts the rest, and returns when every worker has exited.
func (p *Proxy) Shutdown(grace time.Duration) {
	p.Stop()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	}
	p.killing.Store(true)
	p.wakeAll()
	<-p.done
}

// Retire stops accepting and lets live sessions run until they end, as
// the generation a reload replaced does; with hardStop > 0 it aborts
// those still running after that long. It returns when every worker has
// exited.
func (p *Proxy) Retire(hardStop time.Duration) {
	if hardStop > 0 {
		p.Shutdown(hardStop)
		return
	}
	p.Stop()
	<-p.done
}

func (p *Proxy) wakeAll() {
	for _, w := range p.workers {
		if w.eng != nil {
			w.wake()
		}
	}
}
