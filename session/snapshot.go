package session

import (
	"net/netip"
	"time"

	"ringproxy/session/health"
)

// Snapshot is the whole process at one moment, for stats pages and
// exporters: every worker's counters summed, and the current state of
// frontends, backends and servers. Its JSON form is /stats.json.
type Snapshot struct {
	Time      time.Time       `json:"time"`
	Uptime    float64         `json:"uptime_seconds"`
	Process   ProcessStats    `json:"process"`
	Frontends []FrontendStats `json:"frontends"`
	Backends  []BackendStats  `json:"backends"`
	Workers   []WorkerStats   `json:"workers"`
}

// WorkerStats is one worker loop: how busy it is and how much each pass
// of it batches (completions per turn).
type WorkerStats struct {
	ID          int    `json:"id"`
	CPU         int    `json:"cpu"`
	Turns       uint64 `json:"turns"`
	Completions uint64 `json:"completions"`
	Sessions    uint64 `json:"sessions_total"`
}

// ProcessStats are process-wide figures: every worker's counters summed
// and the gauges (Stats), with the config they run under. Its JSON keys
// are the names the access log and README use; the counters' come from
// ProcessCounters (snapshot_json.go).
type ProcessStats struct {
	Engine  string
	Workers int
	MaxConn int
	Stats
	SessionRate Rate // sessions started per second
	ConnRate    Rate // connections the kernel handed over per second, refused ones included
	// For the admin socket's show info (not in /stats.json): the fd
	// ceiling, the splice pipe budget and the pipes open now, whether
	// this generation stopped accepting, and whether its loops may
	// busy-poll (global.busy_poll).
	MaxSock     int
	MaxPipes    int64
	Pipes       int64
	Stopping    bool
	BusyPolling bool
}

// FrontendStats is one frontend.
type FrontendStats struct {
	Name        string            `json:"name"`
	Binds       []string          `json:"binds"`
	Backend     string            `json:"backend"`
	MaxConn     int               `json:"maxconn"`
	CurSessions int64             `json:"current_sessions"`
	Sessions    uint64            `json:"sessions_total"`
	Refused     uint64            `json:"refused_total"`
	BytesIn     uint64            `json:"bytes_in"`
	BytesOut    uint64            `json:"bytes_out"`
	Ended       map[string]uint64 `json:"ended"`
	Disabled    bool              `json:"disabled"`        // disable frontend: its sockets refuse clients
	MaxSessions int64             `json:"max_sessions"`    // most open at once (HAProxy's smax)
	SessionRate Rate              `json:"session_rate"`    // sessions started per second
	ConnRate    Rate              `json:"connection_rate"` // connections per second, refused ones included
	// Routes are its routes in order, then the default (Default set),
	// with the sessions each took; empty without routes.
	Routes []RouteStats `json:"routes,omitempty"`
	// RateLimit is rate_limit, new sessions per second, 0 = off (for
	// show stat; not in /stats.json).
	RateLimit int `json:"-"`
}

// RouteStats is one route of a frontend, or its default.
type RouteStats struct {
	Match   string `json:"match"`   // what it matches, as check prints it; "default" for the default
	Backend string `json:"backend"` // "" for a default that closes (no-route)
	Default bool   `json:"default,omitempty"`
	Hits    uint64 `json:"hits_total"` // sessions it took
}

// BackendStats is one backend and its servers.
type BackendStats struct {
	Name     string        `json:"name"`
	Balance  string        `json:"balance"`
	CurQueue int64         `json:"current_queue"`
	Servers  []ServerStats `json:"servers"`
	// MaxSessions is the most sessions it held at once, on its servers
	// or queued for one (HAProxy's smax); MaxQueue the longest its queue
	// was (qmax).
	MaxSessions int64 `json:"max_sessions"`
	MaxQueue    int64 `json:"max_queue"`
	SessionRate Rate  `json:"session_rate"` // sessions that reached one of its servers, per second
	// LastChange is when it last went DOWN (no server takes new
	// sessions) or back UP, the generation's start before that; Downtime
	// the time it spent DOWN in all, and DownTransitions how many times
	// it went DOWN.
	LastChange      time.Time `json:"last_change"`
	Downtime        Seconds   `json:"downtime_seconds"`
	DownTransitions uint64    `json:"down_transitions"`
	LastSession     time.Time `json:"last_session,omitzero"` // when one of its servers last got a session, to the second
}

// ServerStats is one server.
type ServerStats struct {
	Name        string `json:"name"`
	Addr        string `json:"address"`         // where new sessions go now (set server addr, DNS)
	AddrChanges uint64 `json:"address_changes"` // times that changed at runtime
	Port        uint16 `json:"-"`               // the config's port, which a named server has before any address
	Up          bool   `json:"up"`
	Disabled    bool   `json:"disabled"`    // Admin is drain or maint
	Admin       string `json:"admin_state"` // ready, drain or maint (set server state)
	// Weight is its effective weight: while it warms up (SlowStart) the
	// share of UserWeight it has now, as HAProxy's weight column; else
	// UserWeight.
	Weight       int           `json:"weight"`
	UserWeight   int           `json:"-"` // the config's or set weight's, HAProxy's uweight (in SlowStart while warming up)
	InitWeight   int           `json:"-"` // the config's, which set weight N% is relative to
	Dynamic      bool          `json:"-"` // added at runtime (add server)
	Backup       bool          `json:"backup"`
	MaxConn      int           `json:"maxconn"`
	CurSessions  int64         `json:"current_sessions"`
	Sessions     uint64        `json:"sessions_total"`
	ConnFailures uint64        `json:"connect_failures"`
	BytesIn      uint64        `json:"bytes_in"`
	BytesOut     uint64        `json:"bytes_out"`
	Check        *CheckStats   `json:"check,omitempty"`
	Agent        *AgentStats   `json:"agent,omitempty"`   // nil without an agent check
	Observe      *ObserveStats `json:"observe,omitempty"` // nil without observe
	// Resolution is a named server's DNS state; nil for an IP address.
	Resolution   *ResolutionStats `json:"resolution,omitempty"`
	SlowStart    *SlowStart       `json:"slow_start,omitempty"` // nil unless it is warming up
	MaxSessions  int64            `json:"max_sessions"`         // most slots held at once (HAProxy's smax)
	SessionRate  Rate             `json:"session_rate"`         // sessions that reached it, per second
	Retries      uint64           `json:"retries"`              // failed connects retried on it (wretr)
	Redispatches uint64           `json:"redispatches"`         // sessions that left it for another server after failed connects (wredis)
	// LastChange is when it last started or stopped taking new sessions
	// (see TakesSessions), the generation's start before that; Downtime
	// the time it spent not taking them in all.
	LastChange  time.Time `json:"last_change"`
	Downtime    Seconds   `json:"downtime_seconds"`
	LastSession time.Time `json:"last_session,omitzero"` // when it last got a session, to the second
}

// SlowStart is a server warming up: it came back UP and ramps to its
// weight and maxconn over Window.
type SlowStart struct {
	Since    time.Time `json:"since"`
	Window   Seconds   `json:"window_seconds"`
	Throttle int       `json:"throttle_percent"`  // of its weight (of its maxconn for the static algorithms) it has now, HAProxy's throttle
	Weight   int       `json:"weight"`            // the weight it ramps to (HAProxy's uweight)
	MaxConn  int       `json:"maxconn,omitempty"` // the maxconn it has now; 0: unlimited
}

// TakesSessions says whether the server can take new sessions: UP and
// not taken out by an operator.
func (s ServerStats) TakesSessions() bool { return s.Up && !s.Disabled }

// Serving counts the backend's servers that can take new sessions.
func (b BackendStats) Serving() int {
	n := 0
	for i := range b.Servers {
		if b.Servers[i].TakesSessions() {
			n++
		}
	}
	return n
}

// Totals are a backend's servers' figures summed, and the sessions it
// holds now: on its servers or queued for one (HAProxy's scur).
type Totals struct {
	CurSessions                         int64
	Sessions, BytesIn, BytesOut         uint64
	ConnFailures, Retries, Redispatches uint64
}

// Totals sums the backend's servers.
func (b BackendStats) Totals() Totals {
	t := Totals{CurSessions: b.CurQueue}
	for i := range b.Servers {
		s := &b.Servers[i]
		t.CurSessions += s.CurSessions
		t.Sessions += s.Sessions
		t.BytesIn += s.BytesIn
		t.BytesOut += s.BytesOut
		t.ConnFailures += s.ConnFailures
		t.Retries += s.Retries
		t.Redispatches += s.Redispatches
	}
	return t
}

// CheckStats is a server's health check state.
type CheckStats struct {
	LastOK        bool      `json:"last_ok"`
	LastCheck     time.Time `json:"last_check"`
	LastError     string    `json:"last_error,omitempty"`
	Checks        uint64    `json:"checks"`
	CheckFailures uint64    `json:"check_failures"`
	ChecksSkipped uint64    `json:"checks_skipped"` // not run for a local shortage (no fd): not counted
	Transitions   uint64    `json:"transitions"`
	// For the admin socket's show stat (not in /stats.json): the check's
	// kind, rise and fall, the status an http check wants, the current
	// streaks, how long the last check took and when LastError was
	// recorded.
	Kind            string        `json:"-"`
	Rise            int           `json:"-"`
	Fall            int           `json:"-"`
	ExpectStatus    int           `json:"-"`
	Successes       int           `json:"-"`
	Failures        int           `json:"-"`
	PassiveFailures int64         `json:"-"`
	LastDuration    time.Duration `json:"-"`
	LastErrorAt     time.Time     `json:"-"`
	Paused          bool          `json:"-"` // in maintenance: not checked
	Hana            bool          `json:"-"` // the last result is observe's errors (status HANA)
	Port            uint16        `json:"-"` // where checks go when not the server's own port; 0: its own
	Address         netip.Addr    `json:"-"` // and address; invalid: its own
}

// AgentStats is a server's agent check, in HAProxy's words.
type AgentStats struct {
	Up           bool          `json:"up"`     // the agent's health: false from down/stopped/fail to up
	Status       string        `json:"status"` // INI, L7OK, L7STS, CHECKED, L4CON, L4TOUT, L7TOUT, L7RSP
	Desc         string        `json:"desc,omitempty"`
	Line         string        `json:"line,omitempty"` // what it last said
	LastCheck    time.Time     `json:"last_check"`
	LastDuration time.Duration `json:"-"`
	Checks       uint64        `json:"checks"`
	Failures     uint64        `json:"failures"` // no agent reached or no line: never counted against the server
	Port         uint16        `json:"-"`
	Address      netip.Addr    `json:"-"`
	OwnAddress   bool          `json:"-"` // Address was configured (agent address or agent_address), not the server's
}

// ObserveStats is a server's passive health (observe = "layer4").
type ObserveStats struct {
	Failures uint64 `json:"failures"` // times error_limit errors acted (HAProxy's hanafail)
	Down     bool   `json:"down"`     // held DOWN by observe_downtime (no regular check)
	// Until is when that downtime ends.
	Until time.Time `json:"until,omitzero"`
}

// Snapshot gathers the process's state. Each worker copies its counters
// in its own loop, so the data path never shares them.
func (p *Proxy) Snapshot() Snapshot {
	st, g := p.gather()
	now := time.Now()
	hv := p.historyView(now)
	snap := Snapshot{Time: now, Uptime: now.Sub(p.epoch).Seconds(), Process: p.processStats(&st), Workers: g.workers}
	hv.fillProcess(&snap.Process)
	for i, f := range p.fes {
		fs := p.frontendStats(f, &g.fe[i])
		fs.Routes = routeStats(f, g.routes)
		hv.fillFrontend(&fs, f)
		snap.Frontends = append(snap.Frontends, fs)
	}
	for _, b := range p.bes {
		bs := BackendStats{Name: b.cfg.Name, Balance: b.cfg.Balance, CurQueue: b.queued.Load()}
		var checks []health.ServerState
		if b.monitor != nil {
			checks = b.monitor.Snapshot()
		}
		for _, s := range b.servers() {
			if s.gidx >= len(g.srv) {
				continue // added since the counters were gathered: in the next snapshot
			}
			ss := serverStats(s, &g.srv[s.gidx])
			if checks != nil {
				fillHealth(&ss, &checks[s.idx], b.cfg, s.cfg)
			}
			if s.res != nil {
				ss.Resolution = s.res.stats(s.cfg)
			}
			hv.fillServer(&ss, s)
			bs.Servers = append(bs.Servers, ss)
		}
		hv.fillBackend(&bs, b)
		snap.Backends = append(snap.Backends, bs)
	}
	return snap
}

func (p *Proxy) processStats(st *Stats) ProcessStats {
	return ProcessStats{Engine: p.cfg.Global.Engine, Workers: len(p.workers), MaxConn: p.cfg.Global.MaxConn, Stats: *st,
		MaxSock: p.maxsock, MaxPipes: p.maxPipes, Pipes: p.pipes.Load(), Stopping: p.stopping.Load(),
		BusyPolling: p.cfg.Global.BusyPoll > 0}
}

func (p *Proxy) frontendStats(f *frontend, c *FrontendCounters) FrontendStats {
	fs := FrontendStats{Name: f.cfg.Name, Backend: f.cfg.BackendName, MaxConn: f.cfg.MaxConn, RateLimit: f.cfg.RateLimit,
		CurSessions: f.cur.Load(), Sessions: c.Sessions, Refused: c.Refused,
		BytesIn: c.BytesIn, BytesOut: c.BytesOut, Ended: namedReasons(&c.Ended), Disabled: f.paused.Load()}
	for _, a := range p.Addrs(f.cfg.Name) {
		fs.Binds = append(fs.Binds, a.String())
	}
	return fs
}

func routeStats(f *frontend, hits []uint64) []RouteStats {
	if len(f.routes) == 0 {
		return nil
	}
	out := make([]RouteStats, 0, len(f.routes)+1)
	for i, r := range f.routes {
		out = append(out, RouteStats{Match: r.rule.String(), Backend: r.be.cfg.Name, Hits: hits[f.hits+i]})
	}
	return append(out, RouteStats{Match: "default", Backend: f.cfg.BackendName, Default: true, Hits: hits[f.hits+len(f.routes)]})
}

func serverStats(s *server, c *ServerCounters) ServerStats {
	return ServerStats{Name: s.cfg.Name, Addr: addrString(s.address()), Port: s.cfg.Address.Port(), AddrChanges: s.addrChanges.Load(), Up: s.up.Load(), Disabled: s.adminState() != AdminReady, Admin: s.adminState().String(),
		Weight: int(s.shown.Load()), UserWeight: int(s.weight.Load()), InitWeight: s.cfg.Weight, SlowStart: slowStartStats(s), Dynamic: s.dynamic,
		Backup: s.cfg.Backup, MaxConn: int(s.limit.Load()), CurSessions: s.cur.Load(), Sessions: c.Sessions,
		ConnFailures: c.ConnFailures, BytesIn: c.BytesIn, BytesOut: c.BytesOut, Retries: c.Retries, Redispatches: c.Redispatches}
}

// addrString is ap as stats show it: "" while a named server has none.
func addrString(ap netip.AddrPort) string {
	if !ap.Addr().IsValid() {
		return ""
	}
	return ap.String()
}

// slowStartStats says how far s's ramp is, or nil if it is not warming up.
func slowStartStats(s *server) *SlowStart {
	since, warming := s.be.warmingSince(s)
	if !warming {
		return nil
	}
	return &SlowStart{Since: since, Window: Seconds(s.cfg.SlowStart), Throttle: int(s.throttle.Load()),
		Weight: int(s.weight.Load()), MaxConn: int(s.maxconn.Load())}
}

// checkEndpoint is the port and address s's checks go to when the config
// sends them elsewhere than its own (0 and invalid when it does not), as
// HAProxy's show servers state gives srv_check_port and srv_check_addr.
func checkEndpoint(c *Check, s *Server) (uint16, netip.Addr) {
	port, addr := c.Port, c.Address
	if s.CheckPort != 0 {
		port = s.CheckPort
	}
	if s.CheckAddress.IsValid() {
		addr = s.CheckAddress
	}
	return port, addr
}

// fillHealth fills the parts of a server's stats its monitor knows:
// the regular check, the agent and observe, each when configured.
func fillHealth(ss *ServerStats, c *health.ServerState, be *Backend, s *Server) {
	if be.Check != nil {
		ss.Check = checkStats(c, be.Check)
		ss.Check.Port, ss.Check.Address = checkEndpoint(be.Check, s)
	}
	if be.Agent != nil {
		a := c.Agent
		ap := AgentAddr(be.Agent, s)
		ss.Agent = &AgentStats{Up: a.Up, Status: a.Status, Desc: a.Desc, Line: a.Line, LastCheck: a.LastCheck, LastDuration: a.LastDuration,
			Checks: a.Checks, Failures: a.Failures, Port: ap.Port(), Address: ap.Addr(),
			OwnAddress: be.Agent.Address.IsValid() || s.AgentAddress.IsValid()}
	}
	if be.Observe != nil {
		ss.Observe = &ObserveStats{Failures: c.HanaFailures, Down: c.ObserveDown}
		if c.ObserveDown {
			ss.Observe.Until = c.ObserveUntil
		}
	}
}

func checkStats(c *health.ServerState, cfg *Check) *CheckStats {
	cs := &CheckStats{LastOK: c.LastOK, LastCheck: c.LastCheck, LastError: c.LastError,
		Checks: c.Checks, CheckFailures: c.CheckFailures, ChecksSkipped: c.ChecksSkipped, Transitions: c.Transitions,
		Successes: c.Successes, Failures: c.Failures, PassiveFailures: c.PassiveFailures,
		LastDuration: c.LastDuration, LastErrorAt: c.LastErrorAt, Paused: c.Paused, Hana: c.Hana}
	if cfg != nil {
		cs.Kind, cs.Rise, cs.Fall, cs.ExpectStatus = cfg.Kind, cfg.Rise, cfg.Fall, cfg.ExpectStatus
		if len(cfg.Steps) > 0 {
			// A tcp check with steps converses as an expect check does: its
			// pass is layer 7's (L7OK), as HAProxy's tcp-check with rules.
			cs.Kind = "expect"
		}
	}
	return cs
}

func namedReasons(n *[reasonCount]uint64) map[string]uint64 {
	m := make(map[string]uint64, reasonCount)
	for i, v := range n {
		m[Reason(i).String()] = v
	}
	return m
}

// Stats sums every worker's counters, asking each loop for a copy so the
// loops never share their counters while running.
func (p *Proxy) Stats() Stats {
	st, _ := p.gather()
	return st
}

// gather asks every worker for its counters and sums them, process-wide
// and per scope.
func (p *Proxy) gather() (Stats, gathered) {
	var st Stats
	g := gathered{fe: make([]FrontendCounters, len(p.fes)), srv: make([]ServerCounters, p.nServers.Load()), routes: make([]uint64, p.nRouteHits)}
	for _, w := range p.workers {
		c := w.counters()
		st.add(&Stats{Counters: c.Counters})
		for i := range c.fe {
			g.fe[i].add(&c.fe[i])
		}
		for i := range c.srv {
			g.srv[i].add(&c.srv[i])
		}
		for i, n := range c.routes {
			g.routes[i] += n
		}
		g.workers = append(g.workers, WorkerStats{ID: w.id, CPU: w.cpu, Turns: c.Turns, Completions: c.Completions, Sessions: c.Accepted})
	}
	st.CurConns = p.actconn.Load()
	st.MaxConns = p.maxSeen.Load()
	st.ServerTransitions = p.transitions.Load()
	if p.access != nil {
		st.LogDropped = p.access.Dropped()
	}
	for _, b := range p.bes {
		st.CurQueue += b.queued.Load()
	}
	return st, g
}

// gathered is the per-scope part of gather.
type gathered struct {
	fe      []FrontendCounters
	srv     []ServerCounters
	routes  []uint64 // by frontend.hits
	workers []WorkerStats
}
