package health

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one server to check.
type Target struct {
	Name string         // "app/app1", as it appears in logs
	Addr netip.AddrPort // the server's traffic address, which names it in reasons
	// Check is where its checks connect when that is another endpoint
	// (HAProxy's port and addr): Patroni's REST port beside PostgreSQL's.
	// The zero value: Addr.
	Check netip.AddrPort
	Down  bool // start DOWN: a reload carries over what earlier checks found
	// Paused starts it in maintenance, unchecked until Resume: a reload
	// carries an operator's maint over.
	Paused bool
	// Agent is where its agent listens, with Spec.Agent (required then).
	Agent netip.AddrPort
}

// Event reports a state change of one server.
type Event struct {
	Server  int // index in the targets given to Start
	Name    string
	Up      bool
	Passive bool   // caused by connect failures on live traffic (a DOWN, or the UP after observe's downtime)
	Agent   bool   // caused by the agent's health word
	Message string // a full log line: "server app/app1 is DOWN: connect refused, 3/3 failures"
}

// ServerState is a read-only view of one server, for stats pages.
type ServerState struct {
	Name      string
	Addr      netip.AddrPort
	CheckAddr netip.AddrPort // where its checks connect: Addr unless the check has its own endpoint
	Up        bool
	Paused    bool // in maintenance: not checked, DOWN until Resume

	Successes       int   // consecutive successful active checks
	Failures        int   // consecutive failed active checks
	PassiveFailures int64 // consecutive connect failures on live traffic

	LastCheck    time.Time     // start of the last finished check; zero before the first
	LastDuration time.Duration // of the last finished check
	LastOK       bool          // result of the last finished check
	LastError    string        // the latest failure, kept after recovery; "" if none yet
	LastErrorAt  time.Time

	Checks           uint64 // active checks finished
	CheckFailures    uint64 // of which failed
	ChecksSkipped    uint64 // not run for a local shortage (no fd, memory or port): not counted
	ObservedFailures uint64 // connect failures reported through Observe
	Transitions      uint64 // UP→DOWN and DOWN→UP changes

	// With Spec.Observe: how often error_limit errors acted (HAProxy's
	// hanafail), whether the last check result is theirs (check status
	// HANA), and, without a regular check, whether they hold the server
	// DOWN now and until when.
	HanaFailures uint64
	Hana         bool
	ObserveDown  bool
	ObserveUntil time.Time

	HasAgent bool // Spec.Agent is set; Agent is its state
	Agent    AgentState
}

// Monitor checks the servers of one backend. Create it with Start.
type Monitor struct {
	spec     Spec
	onChange func(Event)
	servers  atomic.Pointer[[]*server] // by index; Add appends, Remove keeps the place
	addMu    sync.Mutex                // serializes Add
	ctx      context.Context           // cancelled by Stop; every check watches it
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// observed is what the data path writes: every worker may touch it, the
// checker goroutine only when nudged. It is 64 bytes and padded so the
// checker's own writes to the rest of server stay off most of its line.
type observed struct {
	streak atomic.Int64  // consecutive connect failures; 0 after a success
	total  atomic.Uint64 // connect failures ever reported
	nudge  chan string   // 1-buffered; wakes the checker, carrying a failure reason or ""
	_      [40]byte
}

// server is one target and its checker goroutine's state. The tracker
// lives on that goroutine's stack; state is its published copy.
type server struct {
	obs    observed
	idx    int
	target Target
	probe  *prober
	pause  chan *pauseReq     // Pause and Resume, to the checker goroutine
	moves  chan moveReq       // SetAddr, to the checker goroutine
	ctx    context.Context    // the monitor's, or ended sooner by Remove
	remove context.CancelFunc // ends this server's checker alone
	ended  chan struct{}      // closed when its checker goroutine has returned
	agent  *agentProber       // nil without Spec.Agent
	agents chan agentResult

	mu    sync.Mutex
	state ServerState
}

// pauseReq asks a checker to stop checking (pause) or start again; it
// closes done once the change is published, and no event of the old
// state can follow.
type pauseReq struct {
	pause bool
	done  chan struct{}
	up    bool // set before done closes: the server's state after
}

// moveReq gives a checker its server's new address; done is closed once
// it is published and checks go there.
type moveReq struct {
	addr, check, agent netip.AddrPort // the target's new Addr, Check and Agent
	done               chan struct{}
}

// result is one finished check, handed from the check's goroutine to the
// server's loop.
type result struct {
	start time.Time
	dur   time.Duration
	err   error
}

// Start validates spec and checks every target in its own goroutine until
// Stop. Servers start UP (see the package doc) unless their target says
// Down. onChange, which may be nil, is called from those goroutines: never concurrently for one server,
// possibly concurrently for different ones. It must not block for long:
// the server's checks wait for it, and so does Stop.
func Start(spec Spec, targets []Target, onChange func(Event)) (*Monitor, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	for i, t := range targets {
		if err := t.validate(spec, i); err != nil {
			return nil, err
		}
	}
	if !spec.hasCheck() {
		spec.Rise, spec.Fall = 1, 1 // the tracker's, never driven by checks
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{spec: spec, onChange: onChange, ctx: ctx, cancel: cancel}
	var servers []*server
	for i, t := range targets {
		servers = append(servers, m.newServer(i, t))
	}
	m.servers.Store(&servers)
	// The first check comes soon, at a random offset so a backend of many
	// servers does not open all its check connections at once.
	first := min(spec.Interval, time.Second)
	if !spec.hasCheck() {
		first = time.Second // no check timer; the agent's, if any, below
	}
	if spec.Agent != nil {
		first = min(spec.Agent.Interval, time.Second)
	}
	for _, s := range servers {
		m.wg.Add(1)
		go m.run(s, rand.N(first))
		if s.agent != nil {
			m.wg.Add(1)
			go m.runAgent(s, rand.N(first))
		}
	}
	return m, nil
}

func (t Target) validate(spec Spec, i int) error {
	if ap := t.endpoint(); (!ap.IsValid() || ap.Port() == 0) && !t.Paused { // a paused one may wait for its address (SetAddr)
		return fmt.Errorf("health: server %d (%s): no address to check: %v", i, t.Name, ap)
	}
	if spec.Agent != nil && (!t.Agent.IsValid() || t.Agent.Port() == 0) && !t.Paused {
		return fmt.Errorf("health: server %d (%s): no agent address: %v", i, t.Name, t.Agent)
	}
	return nil
}

func (m *Monitor) newServer(i int, t Target) *server {
	s := &server{idx: i, target: t, probe: newProber(m.spec, t.endpoint()), pause: make(chan *pauseReq), moves: make(chan moveReq), ended: make(chan struct{})}
	s.ctx, s.remove = context.WithCancel(m.ctx)
	s.obs.nudge = make(chan string, 1)
	s.state = ServerState{Name: t.Name, Addr: t.Addr, CheckAddr: t.endpoint(), Up: !t.Down && !t.Paused, Paused: t.Paused}
	if m.spec.Agent != nil {
		s.agent = m.newAgentProber(t)
		s.agents = make(chan agentResult)
		s.state.HasAgent = true
		s.state.Agent = AgentState{Up: true, Status: "INI"}
	}
	return s
}

// Add starts checking one more server (add server at runtime) and
// returns its index, the next after every server's so far: its first
// check comes at once.
func (m *Monitor) Add(t Target) (int, error) {
	m.addMu.Lock()
	defer m.addMu.Unlock()
	old := *m.servers.Load()
	if err := t.validate(m.spec, len(old)); err != nil {
		return 0, err
	}
	if m.ctx.Err() != nil {
		return 0, errors.New("health: monitor stopped")
	}
	s := m.newServer(len(old), t)
	servers := append(old[:len(old):len(old)], s)
	m.servers.Store(&servers)
	m.wg.Add(1)
	go m.run(s, 0)
	if s.agent != nil {
		m.wg.Add(1)
		go m.runAgent(s, 0)
	}
	return s.idx, nil
}

// Remove stops checking server i for good (del server) and waits for its
// checker: no event for it follows. Its index is not reused.
func (m *Monitor) Remove(i int) {
	s := (*m.servers.Load())[i]
	s.remove()
	<-s.ended
	if s.agent != nil {
		<-s.agent.ended
	}
}

func (m *Monitor) list() []*server { return *m.servers.Load() }

// endpoint is where t's checks connect.
func (t Target) endpoint() netip.AddrPort {
	if t.Check.IsValid() {
		return t.Check
	}
	return t.Addr
}

// Observe reports the result of a connect to server on live traffic. It is
// called from the worker loops: it never blocks and allocates nothing. A
// success costs one atomic load unless it ends a failure streak. fall
// consecutive failures take the server DOWN (on its checker goroutine, soon
// after); reason is the cause for the log line ("connect refused") and
// should be a constant or otherwise long-lived string. A nil Monitor (no
// checks configured) ignores it. server out of range panics, like an index.
func (m *Monitor) Observe(server int, ok bool, reason string) {
	if m == nil {
		return
	}
	o := &m.list()[server].obs
	if ok {
		if o.streak.Load() == 0 {
			return
		}
		o.streak.Store(0)
		reason = "" // the checker learns the streak ended, to leave the fast interval
	} else {
		o.streak.Add(1)
		o.total.Add(1)
	}
	select {
	case o.nudge <- reason:
	default: // a nudge is pending; the checker will read the streak anyway
	}
}

// Snapshot returns the state of every server, in target order.
func (m *Monitor) Snapshot() []ServerState {
	servers := m.list()
	out := make([]ServerState, len(servers))
	for i, s := range servers {
		s.mu.Lock()
		out[i] = s.state
		s.mu.Unlock()
		out[i].PassiveFailures = s.obs.streak.Load()
		out[i].ObservedFailures = s.obs.total.Load()
	}
	return out
}

// Stop ends every checker, cutting checks in flight short, and waits for
// them. No callback runs after it returns. It may be called more than once.
func (m *Monitor) Stop() {
	m.cancel()
	m.wg.Wait()
}

// Pause puts server i in maintenance, as HAProxy's `set server state
// maint`: no more checks, the server DOWN with no streak. When it
// returns no event of the old state can follow. A check in flight is
// let finish and its result dropped.
func (m *Monitor) Pause(i int) { m.setPaused(i, true) }

// Resume ends server i's maintenance as HAProxy does: UP at once, but
// one failed check from DOWN, and checked again right away. It says
// whether the server is UP: not when its agent last said down.
func (m *Monitor) Resume(i int) bool { return m.setPaused(i, false) }

// SetAddr moves server i's checks to its new traffic address addr and
// check endpoint check (the zero value: addr), and its agent to agent
// (the zero value: no agent), as the server's address changed at
// runtime. Its health stays what it was, but a check in flight to the
// old address is dropped and the new one is checked right away, so the
// verdict soon says what the new address does. When it returns, every
// later check goes to the new address.
func (m *Monitor) SetAddr(i int, addr, check, agent netip.AddrPort) {
	s := m.list()[i]
	req := moveReq{addr: addr, check: check, agent: agent, done: make(chan struct{})}
	select {
	case s.moves <- req:
	case <-s.ctx.Done():
		return
	}
	select {
	case <-req.done:
	case <-s.ctx.Done():
	}
}

func (m *Monitor) setPaused(i int, pause bool) bool {
	req := &pauseReq{pause: pause, done: make(chan struct{})}
	s := m.list()[i]
	select {
	case s.pause <- req:
	case <-s.ctx.Done():
		return !pause
	}
	select {
	case <-req.done:
	case <-s.ctx.Done():
	}
	return req.up
}

// checker is a server's checker goroutine's own state. The server is UP
// while every part that runs agrees: the regular check's tracker, the
// agent, and (without a regular check) observe's downtime.
type checker struct {
	t        tracker
	paused   bool // in maintenance: no check scheduled
	inFlight bool // a check runs; its result comes on done
	stale    bool // the check in flight began before a pause, resume or move: drop its result
	nextAt   time.Time
	timer    *time.Timer

	agentUp  bool        // the agent's health: down after down/stopped/fail until up
	obsDown  bool        // observe took it DOWN with no regular check to bring it back
	obsTimer *time.Timer // ends obsDown
	up       bool        // what was last reported: the server's state as the proxy has it
}

// effective is the server's state as its parts say.
func (c *checker) effective() bool { return !c.paused && c.t.up && c.agentUp && !c.obsDown }

// run is server s's checker goroutine: it owns s's tracker, runs one check
// at a time (in a child goroutine, so passive reports are handled while a
// check waits on a slow server) and reports changes.
func (m *Monitor) run(s *server, first time.Duration) {
	defer m.wg.Done()
	defer close(s.ended)
	up := !s.target.Down && !s.target.Paused
	c := &checker{t: newTracker(m.spec.Rise, m.spec.Fall, up), paused: s.target.Paused,
		nextAt: time.Now().Add(first), timer: time.NewTimer(first), agentUp: true, up: up, obsTimer: time.NewTimer(time.Hour)}
	c.obsTimer.Stop()
	if !up && !m.spec.hasCheck() && !s.target.Paused {
		// A reload knew it DOWN: the agent's word, or observe's downtime,
		// which starts over.
		c.t.up = true
		if m.spec.Agent != nil {
			c.agentUp = false
		} else {
			m.observeDown(s, c, 0, "DOWN before the reload")
		}
	}
	if c.paused || !m.spec.hasCheck() {
		c.timer.Stop()
	}
	defer c.timer.Stop()
	defer c.obsTimer.Stop()
	done := make(chan result, 1)
	lastReason := "connect failed" // if a reason was lost to a full nudge channel
	for {
		select {
		case <-s.ctx.Done():
			if c.inFlight {
				<-done // the check watches ctx and returns at once
			}
			return
		case <-c.timer.C:
			c.inFlight = true
			probe := s.probe // SetAddr may replace it while this check runs
			go func() {
				start := time.Now()
				err := probe.check(s.ctx)
				done <- result{start: start, dur: time.Since(start), err: err}
			}()
		case r := <-done:
			m.finished(s, c, r)
		case req := <-s.pause:
			m.setMaint(s, c, req.pause)
			req.up = c.up
			close(req.done)
		case req := <-s.moves:
			t := s.target // the checker goroutine's own: written only here
			t.Addr, t.Check, t.Agent = req.addr, req.check, req.agent
			m.move(s, c, t)
			close(req.done)
		case r := <-s.agents:
			m.agentAnswered(s, c, r)
		case <-c.obsTimer.C:
			m.observeBack(s, c)
		case reason := <-s.obs.nudge:
			if reason != "" {
				lastReason = reason
			}
			if c.paused {
				continue // no traffic goes to it; a late report says nothing
			}
			m.nudged(s, c, lastReason)
		}
	}
}

// nudged handles what the data path reported: without observe, the
// streak counts toward fall (with a regular check); with it, error_limit
// errors act through on_error.
func (m *Monitor) nudged(s *server, c *checker, reason string) {
	if m.spec.Observe != nil {
		m.observeLayer4(s, c, reason)
		return
	}
	if !m.spec.hasCheck() {
		s.obs.streak.Store(0) // the agent alone: live traffic is not watched
		return
	}
	was := c.t.transitioning()
	m.observed(s, c, reason)
	// Live traffic started failing: check sooner rather than wait
	// out a long interval.
	if !was && c.t.transitioning() {
		m.checkSoon(c)
	}
}

// checkSoon brings the next check forward to the fast interval.
func (m *Monitor) checkSoon(c *checker) {
	if fast := jitter(m.spec.fastInterval()); m.spec.hasCheck() && !c.inFlight && !c.paused && time.Until(c.nextAt) > fast {
		c.nextAt = time.Now().Add(fast)
		c.timer.Reset(fast)
	}
}

// finished takes a check's result and schedules the next check.
func (m *Monitor) finished(s *server, c *checker, r result) {
	c.inFlight = false
	var short *localShortage
	switch {
	case errors.Is(r.err, errStopped):
		return // ctx is done; the next round returns
	case c.stale:
		c.stale = false
		if !c.paused {
			c.nextAt = time.Now()
			c.timer.Reset(0) // resumed while it ran: check now
		}
		return
	case errors.As(r.err, &short):
		m.skipped(s, r)
		c.nextAt = r.start.Add(jitter(m.spec.fastInterval())) // soon: the shortage may be over
	default:
		m.checked(s, c, r)
		c.nextAt = r.start.Add(jitter(m.interval(&c.t)))
	}
	c.timer.Reset(time.Until(c.nextAt))
}

// setMaint enters or leaves maintenance and publishes it. The agent and
// observe's downtime keep what they found: leaving maint, a server whose
// agent said down stays DOWN.
func (m *Monitor) setMaint(s *server, c *checker, pause bool) {
	if pause == c.paused {
		return
	}
	c.paused = pause
	c.stale = c.inFlight
	c.timer.Stop()
	s.obs.streak.Store(0)
	if pause {
		c.t = newTracker(m.spec.Rise, m.spec.Fall, false)
	} else {
		c.t = newTracker(m.spec.Rise, m.spec.Fall, true)
		c.t.fail = m.spec.Fall - 1
		if !m.spec.hasCheck() {
			c.t.fail = 0
		}
		if !c.inFlight && m.spec.hasCheck() {
			c.nextAt = time.Now()
			c.timer.Reset(0)
		}
	}
	c.up = c.effective()
	s.mu.Lock()
	st := &s.state
	st.Paused, st.Up, st.Successes, st.Failures = pause, c.up, c.t.succ, c.t.fail
	s.mu.Unlock()
}

// move points s's checks at t's endpoint. A check in flight went to the
// old one: its result is dropped (stale) and the next check comes now.
func (m *Monitor) move(s *server, c *checker, t Target) {
	s.target = t
	s.probe = newProber(m.spec, t.endpoint())
	if s.agent != nil && t.Agent.IsValid() {
		s.agent.setAddr(t.Agent)
	}
	s.obs.streak.Store(0) // failures on the old address say nothing of the new
	s.mu.Lock()
	s.state.Addr, s.state.CheckAddr = t.Addr, t.endpoint()
	s.mu.Unlock()
	if c.paused {
		return // checked from the new address once resumed
	}
	if c.inFlight {
		c.stale = true
		return
	}
	c.nextAt = time.Now()
	c.timer.Reset(0)
}

// interval is the base delay before the next check.
func (m *Monitor) interval(t *tracker) time.Duration {
	if t.transitioning() {
		return m.spec.fastInterval()
	}
	return m.spec.Interval
}

// jitter spreads d by ±10% so checks of many servers drift apart.
func jitter(d time.Duration) time.Duration {
	span := d / 5
	if span <= 0 {
		return d
	}
	return d - d/10 + rand.N(span+1)
}

// checked records an active check result, publishes it and reports a change.
func (m *Monitor) checked(s *server, c *checker, r result) {
	t := &c.t
	ok := r.err == nil
	changed := t.record(ok)
	if ok && m.spec.Observe != nil {
		s.obs.streak.Store(0) // HAProxy: a passing check clears observe's errors
	}
	name := s.target.Name
	s.mu.Lock()
	st := &s.state
	st.Checks++
	st.Hana = false
	st.LastCheck, st.LastDuration, st.LastOK = r.start, r.dur, ok
	if !ok {
		st.CheckFailures++
		st.LastError = fmt.Sprintf("check %s %v: %v", name, s.target.Addr, r.err)
		st.LastErrorAt = r.start.Add(r.dur)
	}
	st.Successes, st.Failures = t.succ, t.fail
	s.mu.Unlock()
	if !changed {
		return
	}
	// Failures seen before this change must not count toward the next DOWN.
	s.obs.streak.Store(0)
	var msg string
	if t.up {
		msg = fmt.Sprintf("server %s is UP: %d/%d successes", name, t.succ, t.rise)
	} else {
		msg = fmt.Sprintf("server %s is DOWN: %v, %d/%d failures", name, r.err, t.fail, t.fall)
	}
	m.settle(s, c, Event{Message: msg})
}

// settle reports the server's state when its parts changed it: ev is the
// event to send, its Message the line that says why (the Up and
// identity fields are filled here). A change no part completes (a check
// passing while the agent says down) is published without an event.
func (m *Monitor) settle(s *server, c *checker, ev Event) {
	up := c.effective()
	s.mu.Lock()
	st := &s.state
	st.Up, st.Successes, st.Failures = up, c.t.succ, c.t.fail
	st.ObserveDown = c.obsDown
	st.Agent.Up = c.agentUp
	changed := up != c.up && !c.paused
	if changed {
		st.Transitions++
	}
	s.mu.Unlock()
	if !changed {
		return
	}
	c.up = up
	ev.Server, ev.Name, ev.Up = s.idx, s.target.Name, up
	if up && !strings.Contains(ev.Message, " is UP") {
		ev.Message = fmt.Sprintf("server %s is UP: %s", s.target.Name, ev.Message)
	}
	if !up && !strings.Contains(ev.Message, " is DOWN") {
		ev.Message = fmt.Sprintf("server %s is DOWN: %s", s.target.Name, ev.Message)
	}
	m.notify(ev)
}

// skipped records a check that could not run for a shortage of ours: the
// server's state and streaks stay as they were.
func (m *Monitor) skipped(s *server, r result) {
	s.mu.Lock()
	st := &s.state
	st.ChecksSkipped++
	st.LastError = fmt.Sprintf("check %s %v skipped: %v", s.target.Name, s.target.Addr, r.err)
	st.LastErrorAt = r.start.Add(r.dur)
	s.mu.Unlock()
}

// observed applies the passive failure streak the data path counted.
func (m *Monitor) observed(s *server, c *checker, reason string) {
	t := &c.t
	n := s.obs.streak.Load()
	if !t.setPassive(int(min(n, int64(t.fall)))) {
		return
	}
	s.obs.streak.Store(0)
	name := s.target.Name
	s.mu.Lock()
	st := &s.state
	st.LastError = fmt.Sprintf("live traffic to %s %v: %s, %d consecutive connect failures", name, s.target.Addr, reason, n)
	st.LastErrorAt = time.Now()
	s.mu.Unlock()
	m.settle(s, c, Event{Passive: true,
		Message: fmt.Sprintf("server %s is DOWN: %s, %d/%d failures on live traffic", name, reason, t.fall, t.fall)})
}

func (m *Monitor) notify(ev Event) {
	if m.onChange != nil {
		m.onChange(ev)
	}
}
