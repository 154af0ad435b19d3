package session

import (
	"time"

	"ringproxy/session/balance"
)

// Slow start (HAProxy's slowstart). A server with a SlowStart window that
// comes back (its check passes after DOWN, it leaves maint) does not take
// its full share at once: a server that just restarted has cold caches,
// an empty connection pool, a JIT that has not run, and a full share of
// new sessions could take it straight back down. Its effective weight
// rises linearly from 1/16 of its weight (balance.WeightScale) to all of
// it over the window, and its maxconn, when set, from 1 to all of it,
// after HAProxy's server_recalc_eweight and srv_dynamic_maxconn. (Its
// weight is 1/16 + elapsed/window in whole seconds, so it is full at
// 15/16 of the window and moves in 16 levels; this one ends at the end
// of the window, in 20 steps.)
//
// The weight ramp acts where the balancer weighs servers on the fly
// (balance.Ramps: roundrobin, leastconn, random, consistent); the maxconn
// ramp acts for every algorithm. A server that is UP when the process
// starts, or when a reload takes over, is never ramped: it is already
// serving, and throttling it would push its load onto the others for
// the whole window. A ramp in progress at a reload goes on from where
// it was (HAProxy's server-state-file keeps it the same way).
//
// The ramp never touches the data path: a timer goroutine recomputes the
// server's effective weight and maxconn every rampStep and swaps in a
// whole new balancer (as set weight does), so a pick stays lock- and
// allocation-free. An operator's set weight during a ramp changes the
// weight it ramps to; the ramp goes on. A server going DOWN or into
// maint mid-ramp ends it; its next UP starts a new one from the bottom.

// warmup is one server's ramp in progress.
type warmup struct {
	start  time.Time
	window time.Duration
	timer  *time.Timer
}

// minRampStep bounds how often a ramp rebuilds its backend's balancer.
const minRampStep = 250 * time.Millisecond

// rampStep is how often a ramp over window steps: 5% of the window, as
// HAProxy's warmup task means to (its comment says the larger of 1s and
// 1/20 of slowstart, but it stores slowstart in seconds and compares it
// with 1000 ms, so in practice it steps every second: 3 steps for a 3s
// window, 16 weight levels in all since its weight has 1s resolution).
// Twenty steps whatever the window keep the ramp as smooth at 5s as at
// 5min; the floor of 250ms keeps a very short window from rebuilding a
// balancer (for consistent, sorting every point of the ring) more than
// four times a second.
func rampStep(window time.Duration) time.Duration { return max(window/20, minRampStep) }

// warmth is what a server of weight w and maxconn m (0: unlimited) may
// take elapsed into a ramp over window: its effective weight in
// 1/WeightScale units, from w (1/16 of full) at the start to
// w×WeightScale at the end, rounded up so that it never drops to 0; and
// its maxconn, from 1 to m, as HAProxy's srv_dynamic_maxconn.
func warmth(w, m int, elapsed, window time.Duration) (eweight, maxconn int) {
	elapsed = min(max(elapsed, 0), window)
	f := float64(elapsed) / float64(window)
	full := float64(w * balance.WeightScale)
	eweight = int(float64(w) + (full-float64(w))*f + 0.999999)
	eweight = min(eweight, w*balance.WeightScale)
	if m > 0 {
		maxconn = max(1, int(float64(m)*f))
	}
	return eweight, maxconn
}

// views is what a balancer over servers is built from: every server's
// weight (a deleted one's 0), and for the ones warming up their
// effective weight and maxconn at now. It publishes each server's
// effective figures for stats and take. Called with lbMu held (or by
// newBackend, which owns b alone).
func (b *backend) views(servers []*server, now time.Time) []balance.Server {
	ramps := balance.Ramps(b.cfg.Balance)
	views := make([]balance.Server, len(servers))
	for i, s := range servers {
		c := s.cfg
		w, m := int(s.weight.Load()), int(s.limit.Load())
		if s.deleted.Load() {
			w = 0
		}
		v := balance.Server{Name: c.Name, Addr: c.Address, Key: c.HashKey(), Weight: w, Backup: c.Backup, MaxConn: m}
		shown, throttle := w, int32(0)
		if s.warm != nil {
			ew, mc := warmth(w, m, now.Sub(s.warm.start), s.warm.window)
			if ramps {
				v.Eweight = ew
				shown = (ew + balance.WeightScale - 1) / balance.WeightScale // HAProxy's stats round up
			}
			v.MaxConn = mc
			throttle = int32(100 * ew / max(w*balance.WeightScale, 1))
			if !ramps && m > 0 {
				throttle = int32(100 * mc / m)
			}
			throttle = max(throttle, 1) // 0 means not warming
		}
		s.maxconn.Store(int64(v.MaxConn))
		s.shown.Store(int32(shown))
		s.throttle.Store(throttle)
		views[i] = v
	}
	return views
}

// reweigh rebuilds b's balancer from the servers' state now. Callers
// hold lbMu.
func (b *backend) reweigh() error { return b.rebuild(b.all()) }

// warmUp starts s's ramp as it comes back (its check passed after DOWN,
// it left maint): call it before s is marked usable, so s never takes a
// burst at full weight. Without a window it does nothing.
func (p *Proxy) warmUp(b *backend, s *server) {
	if s.cfg.SlowStart <= 0 {
		return
	}
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	p.beginWarmup(b, s, time.Now())
}

// beginWarmup starts (or restarts) s's ramp as of start. lbMu held.
func (p *Proxy) beginWarmup(b *backend, s *server, start time.Time) {
	if s.warm != nil {
		s.warm.timer.Stop()
	}
	w := &warmup{start: start, window: s.cfg.SlowStart}
	s.warm = w
	if err := b.reweigh(); err != nil {
		p.log.Warn("slow start: balancer not rebuilt", "server", b.cfg.Name+"/"+s.cfg.Name, "err", err)
	}
	w.timer = time.AfterFunc(rampStep(w.window), func() { p.warmStep(b, s, w) })
	p.log.Info("slow start", "server", b.cfg.Name+"/"+s.cfg.Name, "window", w.window)
}

// warmStep raises s's effective weight and maxconn one step, or to full
// at the end of the window, and wakes the sessions queued for a slot.
func (p *Proxy) warmStep(b *backend, s *server, w *warmup) {
	b.lbMu.Lock()
	if s.warm != w { // ended or restarted meanwhile
		b.lbMu.Unlock()
		return
	}
	done := time.Since(w.start) >= w.window
	if done {
		s.warm = nil
	} else {
		w.timer.Reset(rampStep(w.window))
	}
	if err := b.reweigh(); err != nil {
		p.log.Warn("slow start: balancer not rebuilt", "server", b.cfg.Name+"/"+s.cfg.Name, "err", err)
	}
	b.lbMu.Unlock()
	p.kickWaiters()
	if done {
		p.log.Info("slow start over: full weight", "server", b.cfg.Name+"/"+s.cfg.Name)
	}
}

// coolDown ends s's ramp, if any, as it goes out (DOWN, maint): its next
// UP starts a new one.
func (p *Proxy) coolDown(b *backend, s *server) {
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	if s.warm == nil {
		return
	}
	s.warm.timer.Stop()
	s.warm = nil
	if err := b.reweigh(); err != nil {
		p.log.Warn("slow start: balancer not rebuilt", "server", b.cfg.Name+"/"+s.cfg.Name, "err", err)
	}
}

// warmingSince says when s's ramp started, if it is warming up.
func (b *backend) warmingSince(s *server) (time.Time, bool) {
	b.lbMu.Lock()
	defer b.lbMu.Unlock()
	if s.warm == nil {
		return time.Time{}, false
	}
	return s.warm.start, true
}

// stopWarmups ends every ramp: the generation is stopping (or never
// started), and its timers must not outlive it.
func (p *Proxy) stopWarmups() {
	for _, b := range p.bes {
		b.lbMu.Lock()
		for _, s := range b.all() {
			if s.warm != nil {
				s.warm.timer.Stop()
				s.warm = nil
			}
		}
		b.lbMu.Unlock()
	}
}

// kickWaiters lets sessions queued for a slot try again: a step raised a
// maxconn. Only while the workers run: before, there is none to wake,
// and after, their engines are closed.
func (p *Proxy) kickWaiters() {
	select {
	case <-p.begin:
	default:
		return
	}
	if !p.stopping.Load() {
		p.kickQueues(nil)
	}
}
