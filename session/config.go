package session

import (
	"net/netip"
	"slices"
	"strconv"
	"time"

	"ringproxy/session/health"
	"ringproxy/session/resolve"
	"ringproxy/session/route"
)

// Config is the resolved, validated configuration the data path runs from.
// It is built by the config loader (cmd/ringproxy/config) and never read
// from disk by this package.
type Config struct {
	Global    Global
	Log       Log
	Admin     Admin
	Frontends []*Frontend
	Backends  []*Backend
	// Resolvers says how servers named by DNS (Server.FQDN) are
	// re-resolved; the loader sets it whenever a server has a name.
	Resolvers *Resolvers
}

// Resolvers is [resolvers], HAProxy's resolvers section.
type Resolvers struct {
	resolve.Config
	// ResolvConf is the file Start reads the nameservers from when
	// Nameservers is empty ("/etc/resolv.conf").
	ResolvConf string
}

// Global holds process-wide settings ([global]).
type Global struct {
	Engine  string // "uring" or "epoll"
	Workers int    // resolved: never 0 here
	MaxConn int    // concurrent client sessions in the whole process
	// MaxConnAuto says maxconn was not configured: when MaxConn does not
	// fit the fd limit, the limit decides it (HAProxy's rule).
	MaxConnAuto bool
	MaxSock     int           // fd ceiling; 0 = from RLIMIT_NOFILE at start
	MaxAccept   int           // accepts handled per listener per loop turn
	BufSize     int           // bytes in one buffer
	Buffers     int           // buffers per worker arena; 0 = sized from MaxConn
	Grace       time.Duration // drain time on SIGTERM
	// HardStopAfter bounds how long a generation replaced by a reload
	// serves its sessions; 0 = until they end (HAProxy's hard-stop-after).
	HardStopAfter time.Duration
	Splice        bool          // long streams move by splice, without a copy (HAProxy's splice-auto)
	BatchWait     time.Duration // uring: how long a completion may wait for others under load; 0 = never
	// BusyPoll is how long a uring loop about to sleep polls first, when
	// its recent waits were that short; 0 = never (ring.Options).
	BusyPoll time.Duration
	// ReuseportShare lets a frontend bind an address another process
	// already listens on with SO_REUSEPORT, splitting its clients with
	// it; by default Start refuses such an address.
	ReuseportShare bool
	// StateFile is where server states are kept across reloads and
	// restarts (HAProxy's server-state-file); "" = nowhere.
	StateFile string
}

// Admin holds [admin].
type Admin struct {
	Stats      netip.AddrPort // HTTP: /metrics, /stats.json; invalid = off
	Socket     string         // runtime API Unix socket path; "" = off
	SocketMode uint32         // its file mode (0600 by default)
	// StatsAdmin lets the stats page set servers ready, drain or maint,
	// for clients from StatsAdminAllow (loopback unless set); off, the
	// page is read-only.
	StatsAdmin      bool
	StatsAdminAllow []netip.Prefix
}

// Log holds [log].
type Log struct {
	Level  string // debug | info | warn | error
	Access bool   // one line per closed session
	Target string // where access lines go: "stdout", "stderr" or "syslog"
	Format string // "tcplog" (HAProxy's, field for field) or "json"
}

// Frontend is one [[frontend]].
type Frontend struct {
	Name          string
	Binds         []netip.AddrPort
	BackendName   string
	Backend       *Backend // resolved from BackendName
	MaxConn       int      // 0 = only the global limit applies
	TimeoutClient time.Duration
	TCPNoDelay    bool
	KeepAlive     bool
	NoLinger      bool
	Allow         []netip.Prefix // empty: every source; else only these
	Deny          []netip.Prefix // closed at accept; wins over Allow
	RateLimit     int            // new sessions per second, whole frontend; 0 = off
	PerSourceRate int            // new connections per second from one address; 0 = off
	AcceptProxy   bool           // a PROXY v1/v2 header comes first (from an upstream balancer)
	// Routes pick the backend, first match wins; none matching: Backend,
	// or with no Backend the client is closed (no-route).
	Routes []*Route
	// InspectTimeout bounds the wait for the client's first bytes when a
	// route looks at them (HAProxy's inspect-delay); when it passes the
	// routes are decided on what arrived. 0 when no route inspects.
	InspectTimeout time.Duration
	// BadHelloClose closes a client whose ClientHello is malformed or
	// truncated, instead of sending it to the default backend.
	BadHelloClose bool
}

// Route is one [[frontend.route]]: its conditions and its backend.
type Route struct {
	route.Rule
	BackendName string
	Backend     *Backend // resolved from BackendName
}

// Inspects says whether some route of f needs the client's first bytes.
func (f *Frontend) Inspects() bool {
	return slices.ContainsFunc(f.Routes, func(r *Route) bool { return r.Inspects() })
}

// NeedsHello says whether some route of f needs the ClientHello parsed.
func (f *Frontend) NeedsHello() bool {
	return slices.ContainsFunc(f.Routes, func(r *Route) bool { return r.NeedsHello() })
}

// Backend is one [[backend]].
type Backend struct {
	Name           string
	Balance        string // "roundrobin"
	TimeoutConnect time.Duration
	TimeoutServer  time.Duration
	TimeoutTunnel  time.Duration // 0 = off; else replaces client/server timeouts once connected
	TimeoutQueue   time.Duration // longest wait for a server slot (server maxconn)
	Retries        int
	Redispatch     bool
	Check          *Check // nil: no active checks, every server stays UP
	SendProxy      string // "", "v1" or "v2": PROXY header to the server first
	// OnDown "shutdown-sessions" closes a server's sessions when it goes
	// DOWN or into maint (HAProxy's on-marked-down shutdown-sessions);
	// OnUp "shutdown-backup-sessions" closes the backups' sessions when a
	// primary comes UP (on-marked-up shutdown-backup-sessions). "" = off.
	OnDown string
	OnUp   string
	// NoFailback (failback = false) sends every new session to the server
	// that took the last one while it stays usable, so a preferred server
	// coming back takes nothing until that one fails or is drained.
	NoFailback bool
	// Agent runs HAProxy's agent-check on every server ([backend.agent],
	// or [backend.check] kind = "agent" with no regular check); nil: none.
	Agent *Agent
	// Observe is passive health on live traffic (observe = "layer4");
	// nil: none, and with a regular check fall consecutive connect
	// failures take a server DOWN.
	Observe *Observe
	Servers []*Server
}

// Agent is a backend's agent check: where the agents listen, how often
// they are asked and what is sent them.
type Agent struct {
	Port     uint16     // every server's agent port; a server's AgentPort wins; 0: each server has one
	Address  netip.Addr // every server's agent address; zero: the server's own
	Interval time.Duration
	Timeout  time.Duration
	Send     string // HAProxy's agent-send; "" sends nothing
}

// Observe is observe = "layer4" with its error_limit, on_error and (no
// regular check) observe_downtime.
type Observe struct {
	ErrorLimit int
	OnError    string // fastinter | fail-check | sudden-death | mark-down
	Downtime   time.Duration
}

// Check is a backend's [backend.check]: how its servers are checked.
type Check struct {
	Kind         string // "tcp" | "http" | "expect"
	Interval     time.Duration
	Timeout      time.Duration
	Rise, Fall   int
	Path         string // http
	Host         string // http Host header; "" = the address checked
	ExpectStatus int    // http
	Send         string // expect: bytes sent first
	Expect       string // expect: bytes that must appear in the answer
	// Steps is a tcp check's conversation once connected, in order
	// ([[backend.check.step]]); empty: the connect alone decides.
	Steps []health.Step
	// Port and Address send every server's checks to another endpoint
	// than its traffic (HAProxy's port and addr); 0 and the zero Addr
	// keep the server's own. A server's CheckPort and CheckAddress win.
	Port    uint16
	Address netip.Addr
}

// Server is one [[backend.server]].
type Server struct {
	Name    string
	Address netip.AddrPort
	Weight  int  // 0..256; 0 takes no new sessions
	MaxConn int  // sessions at once, whole process; 0 = unlimited, above it sessions queue
	Backup  bool // used only when no primary is usable
	// SlowStart is how long it ramps up to its weight and maxconn when it
	// comes back UP (slowstart.go); 0 = at once. The config loader gives
	// it its backend's slowstart unless the server sets its own.
	SlowStart time.Duration
	// CheckPort and CheckAddress send this server's checks elsewhere,
	// over the check's Port and Address; 0 and the zero Addr: those.
	CheckPort    uint16
	CheckAddress netip.Addr
	// AgentPort and AgentAddress are where this server's agent listens,
	// over the backend's agent Port and Address.
	AgentPort    uint16
	AgentAddress netip.Addr
	// FQDN is the DNS name the server was given by ("app1.internal"),
	// "" for an IP address. Address then has only its port: Start finds
	// its first address by InitAddr, and resolution keeps it current.
	FQDN string
	// InitAddr lists how Start finds a named server's first address, in
	// order (HAProxy's init-addr): InitLibc, InitNone or an IP literal.
	// Empty for a template's slot, which starts out until filled.
	InitAddr []string
	// Template is the server_template this server is a slot of; nil for
	// a server of its own. FQDN is then the template's.
	Template *Template
}

// Template is a [[backend.server_template]], HAProxy's server-template:
// Count servers, its slots (Name1..NameCount), filled from one DNS
// name's answer, one target each.
type Template struct {
	Name  string
	Count int
	FQDN  string // what is resolved
	SRV   bool   // FQDN is an SRV name: targets, ports and weights
	Port  uint16 // a host name's port (with SRV, each target has its own)
}

// HashKey identifies s on a consistent-hash ring: its name and port when
// it has a name, whose address may change, a template's slot by its
// name; "" for an IP address, which identifies it itself.
func (s *Server) HashKey() string {
	switch {
	case s.Template != nil:
		return s.Template.FQDN + "/" + s.Name // the slot, whatever target fills it
	case s.FQDN == "":
		return ""
	}
	return s.FQDN + ":" + strconv.Itoa(int(s.Address.Port()))
}
