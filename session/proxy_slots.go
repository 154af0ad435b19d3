package session

// release gives back a session's global and frontend slots and wakes
// workers waiting for one.
func (p *Proxy) release(from *worker, fe *frontend) {
	g := p.actconn.Add(-1)
	f := fe.cur.Add(-1)
	if g+1 < int64(p.cfg.Global.MaxConn) && (fe.cfg.MaxConn == 0 || f+1 < int64(fe.cfg.MaxConn)) {
		return // nobody can have been limited by these counts
	}
	for _, w := range p.workers {
		if w != from && w.waitSlot.Load() {
			w.slotFreed.Store(true)
			w.wake()
		}
	}
}

// noteConns raises the process's and fe's peaks of open sessions to
// their counts now, as a session of fe starts.
func (p *Proxy) noteConns(fe *frontend) {
	raise(&p.maxSeen, p.actconn.Load())
	raise(&p.hist.fePeak[fe.idx], fe.cur.Load())
}

// kickQueues wakes the workers that have sessions waiting for a server
// slot: one has just freed.
func (p *Proxy) kickQueues(from *worker) {
	for _, w := range p.workers {
		if w != from && w.queued.Load() > 0 {
			w.queueKick.Store(true)
			w.wake()
		}
	}
}
