package session

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// history is what the stats show beyond the workers' counters: peaks,
// rates, and when servers and backends changed state.
//
// The data path touches only the peaks and the backends' loads, once per
// session and never per byte: an atomic add for a load, and for a peak a
// load plus, on a new high only, a compare-and-swap. No lock, no
// allocation. The rates come from a sampler goroutine (sampleRates)
// that once a second sums the counters the workers already hand out to
// Snapshot. The state history is written by the health checker's
// callback, the sampler and Snapshot; they take mu, which the data path
// never does.
type history struct {
	fePeak    []atomic.Int64 // most sessions open at once, by frontend.idx (HAProxy's smax); a server's is server.peak
	bePeak    []atomic.Int64 // most of load at once, by backend.idx
	queuePeak []atomic.Int64 // longest queue, by backend.idx (qmax)
	load      []paddedInt64  // sessions a backend holds: on one of its servers, or queued for one

	mu       sync.Mutex
	ix       rateIndex
	sampled  time.Time      // when counts were read
	counts   []uint64       // the counters the rates come from, laid out by ix
	rates    []Rate         // per second between the last two readings, and the highest; laid out by ix
	lastSess []time.Time    // the reading that first saw a server's sessions grow, by server.gidx
	srvState []stateHistory // by server.gidx; grows as servers are added (addServer)
	beState  []stateHistory // by backend.idx
}

// paddedInt64 is an atomic every worker writes, alone on its cache line
// so that its neighbours' writes do not evict it.
type paddedInt64 struct {
	atomic.Int64
	_ [56]byte
}

// Rate is a count per second over the sampler's last second, and the
// highest such second since the generation started. HAProxy's rate_max
// follows a sliding window; this one sees whole seconds, so a burst that
// straddles two of them reads lower.
type Rate struct {
	Cur float64 `json:"current"`
	Max float64 `json:"max"`
}

// sampleEvery is the sampler's period: HAProxy's rates are per second,
// over the last second.
const sampleEvery = time.Second

// rateIndex lays out history.counts and rates: the process's sessions
// and connections, then each frontend's sessions, each frontend's
// connections, each backend's sessions and each server's, last so that
// a server added at runtime only lengthens them.
type rateIndex struct{ fe, feConn, be, srv int }

const (
	rateSessions = 0 // sessions started, the whole process
	rateConns    = 1 // connections the kernel handed over, the whole process
)

func newRateIndex(frontends, backends int) rateIndex {
	ix := rateIndex{fe: 2}
	ix.feConn = ix.fe + frontends
	ix.be = ix.feConn + frontends
	ix.srv = ix.be + backends
	return ix
}

// stateHistory is one server's or backend's record of taking new
// sessions or not.
type stateHistory struct {
	out     bool          // not taking sessions: DOWN, or out by an operator's command
	changed time.Time     // when out last changed; the generation's start before that
	outFor  time.Duration // time spent out before changed
	outs    uint64        // changes to out
}

// set records the state at now.
func (s *stateHistory) set(out bool, now time.Time) {
	if out == s.out {
		return
	}
	if s.out {
		s.outFor += now.Sub(s.changed)
	} else {
		s.outs++
	}
	s.out, s.changed = out, now
}

// downtime is the time spent out in all, up to now.
func (s *stateHistory) downtime(now time.Time) time.Duration {
	if s.out {
		return s.outFor + now.Sub(s.changed)
	}
	return s.outFor
}

// init sizes the history for p's frontends, backends and servers.
func (h *history) init(p *Proxy) {
	h.fePeak = make([]atomic.Int64, len(p.fes))
	h.bePeak = make([]atomic.Int64, len(p.bes))
	h.queuePeak = make([]atomic.Int64, len(p.bes))
	h.load = make([]paddedInt64, len(p.bes))
	n := int(p.nServers.Load())
	h.ix = newRateIndex(len(p.fes), len(p.bes))
	h.counts = make([]uint64, h.ix.srv+n)
	h.rates = make([]Rate, h.ix.srv+n)
	h.lastSess = make([]time.Time, n)
	h.srvState = make([]stateHistory, n)
	h.beState = make([]stateHistory, len(p.bes))
	h.begin(p.bes, p.epoch)
}

// begin starts the state history at now from the servers' states as
// they are, counting no change: at New, and again at Start, after a
// reload may have started some servers DOWN (inheritHealth).
func (h *history) begin(bes []*backend, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sampled = now
	for _, b := range bes {
		servers := b.servers()
		serving := len(servers) == 0
		for _, s := range servers {
			ok := s.usable()
			h.srvState[s.gidx] = stateHistory{out: !ok, changed: now}
			serving = serving || ok
		}
		h.beState[b.idx] = stateHistory{out: !serving, changed: now}
	}
}

// observe records whether each server of b takes new sessions now, and
// whether b does: while any of its servers does. The health checker's
// callback calls it at each verdict; the sampler and Snapshot call it
// too, which dates a change made another way (an operator's command)
// within a second.
func (h *history) observe(b *backend, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	servers := b.servers()
	serving := len(servers) == 0
	for _, s := range servers {
		if s.gidx >= len(h.srvState) {
			continue // added since this generation's arrays last grew: addServer will
		}
		ok := s.usable()
		h.srvState[s.gidx].set(!ok, now)
		serving = serving || ok
	}
	h.beState[b.idx].set(!serving, now)
}

// raise lifts m to n if n is higher.
func raise(m *atomic.Int64, n int64) {
	for {
		old := m.Load()
		if n <= old || m.CompareAndSwap(old, n) {
			return
		}
	}
}

// slotTaken notes that a session took a slot on srv. The server's count
// is read right after the slot was taken (server.take does not return
// it), so a peak another worker's release undoes within those few
// nanoseconds can go unseen.
func (h *history) slotTaken(srv *server) {
	raise(&srv.peak, srv.cur.Load())
	h.hold(srv.be)
}

// queued notes that a session joined b's queue, making it n long.
func (h *history) queued(b *backend, n int64) {
	raise(&h.queuePeak[b.idx], n)
	h.hold(b)
}

// addServer makes room for s, just added at runtime: its gidx is the
// next after every server's the history has.
func (h *history) addServer(s *server, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastSess = append(h.lastSess, time.Time{})
	h.srvState = append(h.srvState, stateHistory{out: !s.usable(), changed: now})
	h.counts = append(h.counts, 0)
	h.rates = append(h.rates, Rate{})
}

// hold and release count a session that holds, or stops holding, a slot
// on one of b's servers or a place in its queue.
func (h *history) hold(b *backend) { raise(&h.bePeak[b.idx], h.load[b.idx].Add(1)) }

func (h *history) release(b *backend) { h.load[b.idx].Add(-1) }

// sampleRates reads the workers' counters once a second for the rates,
// and notes the servers' states, until the generation ends.
func (p *Proxy) sampleRates() {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		st, g := p.gather()
		now := time.Now()
		p.hist.sample(now, p.hist.readings(&st, &g, p.bes))
		for _, b := range p.bes {
			p.hist.observe(b, now)
		}
	}
}

// readings are the counters the rates come from, laid out by h.ix.
func (h *history) readings(st *Stats, g *gathered, bes []*backend) []uint64 {
	r := make([]uint64, h.ix.srv+len(g.srv))
	r[rateSessions] = st.Accepted
	for _, n := range st.AcceptOutcomes {
		r[rateConns] += n
	}
	for i := range g.fe {
		r[h.ix.fe+i] = g.fe[i].Sessions
		r[h.ix.feConn+i] = g.fe[i].Sessions + g.fe[i].Refused
	}
	for i := range g.srv {
		r[h.ix.srv+i] = g.srv[i].Sessions
	}
	for _, b := range bes {
		for _, s := range b.all() {
			if s.gidx < len(g.srv) {
				r[h.ix.be+b.idx] += g.srv[s.gidx].Sessions
			}
		}
	}
	return r
}

// sample turns the readings r taken at now into rates since the last
// ones. A reading below the last one means a worker did not answer in
// time (gather counted it as zero): it is dropped, and the next whole
// one is measured from the last good one, so no rate spikes.
func (h *history) sample(now time.Time, r []uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	dt := now.Sub(h.sampled).Seconds()
	if dt <= 0 || len(r) != len(h.counts) {
		return // a server was added between the reading and now: the next one will do
	}
	for i, n := range r {
		if n < h.counts[i] {
			return
		}
	}
	for i, n := range r {
		v := math.Round(float64(n-h.counts[i])/dt*100) / 100
		h.rates[i] = Rate{Cur: v, Max: max(h.rates[i].Max, v)}
	}
	for i := range h.lastSess {
		if r[h.ix.srv+i] > h.counts[h.ix.srv+i] {
			h.lastSess[i] = now
		}
	}
	h.counts, h.sampled = r, now
}

// historyView is a copy of the history for one snapshot, its states
// brought up to date.
type historyView struct {
	h        *history
	now      time.Time
	ix       rateIndex
	rates    []Rate
	counts   []uint64
	lastSess []time.Time
	srvState []stateHistory
	beState  []stateHistory
}

func (p *Proxy) historyView(now time.Time) historyView {
	for _, b := range p.bes {
		p.hist.observe(b, now)
	}
	h := &p.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	return historyView{h: h, now: now, ix: h.ix, rates: append([]Rate(nil), h.rates...), counts: append([]uint64(nil), h.counts...),
		lastSess: append([]time.Time(nil), h.lastSess...),
		srvState: append([]stateHistory(nil), h.srvState...), beState: append([]stateHistory(nil), h.beState...)}
}

func (v *historyView) fillProcess(ps *ProcessStats) {
	ps.SessionRate, ps.ConnRate = v.rates[rateSessions], v.rates[rateConns]
}

func (v *historyView) fillFrontend(fs *FrontendStats, f *frontend) {
	fs.MaxSessions = v.h.fePeak[f.idx].Load()
	fs.SessionRate, fs.ConnRate = v.rates[v.ix.fe+f.idx], v.rates[v.ix.feConn+f.idx]
}

// fillServer fills ss, whose counters are set, from the history. A
// session the sampler has not seen yet came since its last reading,
// less than a second ago: it is dated now.
func (v *historyView) fillServer(ss *ServerStats, s *server) {
	ss.MaxSessions = s.peak.Load()
	if s.gidx >= len(v.srvState) {
		return // added after the view was taken
	}
	st := &v.srvState[s.gidx]
	ss.SessionRate = v.rates[v.ix.srv+s.gidx]
	ss.LastChange, ss.Downtime, ss.LastSession = st.changed, Seconds(st.downtime(v.now)), v.lastSess[s.gidx]
	if ss.Sessions > v.counts[v.ix.srv+s.gidx] {
		ss.LastSession = v.now
	}
}

// fillBackend fills bs, whose servers are filled, from the history.
func (v *historyView) fillBackend(bs *BackendStats, b *backend) {
	st := &v.beState[b.idx]
	bs.MaxSessions, bs.MaxQueue = v.h.bePeak[b.idx].Load(), v.h.queuePeak[b.idx].Load()
	bs.SessionRate = v.rates[v.ix.be+b.idx]
	bs.LastChange, bs.Downtime, bs.DownTransitions = st.changed, Seconds(st.downtime(v.now)), st.outs
	for i := range bs.Servers {
		if t := bs.Servers[i].LastSession; t.After(bs.LastSession) {
			bs.LastSession = t
		}
	}
}
