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
// exited, with what the generation did meanwhile.
func (p *Proxy) Retire(hardStop time.Duration) Drain {
	start := time.Now()
	p.Stop()
	// Every loop copies its counters in a turn that has seen the stop,
	// and stops its listeners before handling another completion: what
	// ends from here on is the drain's, not the generation's past.
	before := p.Stats()
	if hardStop > 0 {
		p.Shutdown(hardStop)
	} else {
		<-p.done
	}
	return drainBetween(&before, p.Stats(), time.Since(start))
}

// Drain is what a generation did from the moment it stopped accepting
// (a reload replaced it) until its last session ended: the reload's
// account, apart from the generation's lifetime totals in Stats.
type Drain struct {
	Open       uint64        // sessions open when it stopped accepting
	Backlog    uint64        // sessions started after that: clients its accept had taken before the cancel
	Finished   uint64        // sessions that ended on their own (any reason but killed)
	Killed     uint64        // sessions closed by hard_stop_after or a SIGTERM's grace
	HandedOver uint64        // parked clients given to the generation that took over
	Took       time.Duration // from the stop to the last worker's exit
}

// drainBetween is the Drain of a generation whose counters were before
// when it stopped accepting and after once its workers exited.
func drainBetween(before *Stats, after Stats, took time.Duration) Drain {
	ended := func(st *Stats) (n uint64) {
		for _, v := range st.Ended {
			n += v
		}
		return n
	}
	d := Drain{
		Open:       before.Accepted - ended(before),
		Backlog:    after.Accepted - before.Accepted,
		Killed:     after.Ended[ReasonKilled] - before.Ended[ReasonKilled],
		HandedOver: after.HandedOver - before.HandedOver,
		Took:       took,
	}
	d.Finished = ended(&after) - ended(before) - d.Killed
	return d
}

func (p *Proxy) wakeAll() {
	for _, w := range p.workers {
		if w.eng != nil {
			w.wake()
		}
	}
}
