package session

import "ringproxy/session/proxyproto"

// Reason says why a session ended. The zero value is a normal close.
type Reason uint8

const (
	ReasonDone          Reason = iota // both directions shut after a clean FIN each way
	ReasonClientTimeout               // timeout_client (or tunnel) passed with no client activity
	ReasonServerTimeout               // timeout_server (or tunnel) passed with no server activity
	ReasonConnectFailed               // every connect attempt failed
	ReasonClientError                 // the client reset or a client-side syscall failed
	ReasonServerError                 // the server reset or a server-side syscall failed
	ReasonKilled                      // still open when the shutdown grace ran out
	ReasonQueueTimeout                // waited longer than timeout_queue for a server slot
	ReasonNoServer                    // no server of the backend takes new sessions
	ReasonBadProxy                    // the PROXY header was missing, malformed or late
	ReasonDenied                      // the address a PROXY header carried is refused
	ReasonNoRoute                     // no route matched and the frontend has no default backend
	ReasonBadHello                    // a malformed or truncated ClientHello, with on_bad_hello = "close"
	ReasonServerDown                  // its server went DOWN or into maint, with on_down = "shutdown-sessions"
	ReasonServerUp                    // on a backup when a primary came UP, with on_up = "shutdown-backup-sessions"
	reasonCount
)

var reasonNames = [...]string{"done", "client-timeout", "server-timeout", "connect-failed", "client-error", "server-error", "killed", "queue-timeout", "no-server", "bad-proxy", "denied", "no-route", "bad-hello", "server-down", "server-up"}

func (r Reason) String() string { return reasonNames[r] }

// ProxyReason says why a PROXY header was refused: the parser's reasons
// (proxyproto.Reasons), then the two the session adds.
type ProxyReason uint8

const (
	ProxyNotProxy          ProxyReason = iota // no PROXY signature
	ProxyBadV1                                // a malformed v1 line
	ProxyBadV2                                // a malformed v2 header
	ProxyTooLong                              // longer than any header can be
	ProxyUnsupportedFamily                    // a v2 header for UDP or UNIX sockets
	ProxyTimeout                              // no complete header within the header timeout
	ProxyClosed                               // the client closed before a complete header
	proxyReasonCount
)

var proxyReasonNames = [...]string{proxyproto.ReasonNotProxy, proxyproto.ReasonBadV1, proxyproto.ReasonBadV2,
	proxyproto.ReasonTooLong, proxyproto.ReasonUnsupportedFamily, "timeout", "closed"}

func (r ProxyReason) String() string { return proxyReasonNames[r] }

// InspectOutcome says what a client's first bytes were, once a session
// in inspection was routed.
type InspectOutcome uint8

const (
	InspectTLS       InspectOutcome = iota // TLS: a ClientHello read whole, or the protocol alone decided
	InspectHTTP                            // an HTTP request line or the HTTP/2 preface
	InspectSSH                             // an SSH identification string
	InspectNone                            // nothing before inspect_timeout (a server-speaks-first protocol)
	InspectOther                           // bytes of no protocol the routes know
	InspectBadHello                        // a TLS record that is not a well-formed ClientHello
	InspectTruncated                       // a ClientHello cut short by the client's FIN or inspect_timeout
	InspectTooLarge                        // a ClientHello beyond what inspection holds: sent to the default
	inspectOutcomeCount
)

var inspectOutcomeNames = [...]string{"tls", "http", "ssh", "none", "other", "bad-hello", "truncated", "too-large"}

func (o InspectOutcome) String() string { return inspectOutcomeNames[o] }

// AcceptOutcome says what happened to a connection the kernel handed over.
type AcceptOutcome uint8

const (
	AcceptOK         AcceptOutcome = iota // a session started
	AcceptMaxSock                         // fd above maxsock: closed
	AcceptSockOpt                         // a socket option failed: closed
	AcceptOverflow                        // parked queue full while limited: closed
	AcceptStopping                        // arrived during shutdown: closed
	AcceptDenied                          // source refused by allow/deny: closed
	AcceptSourceRate                      // source above per_source_rate: closed
	AcceptDisabled                        // parked when an operator disabled its frontend: closed
	acceptOutcomeCount
)

var acceptOutcomeNames = [...]string{"ok", "maxsock", "sockopt", "overflow", "stopping", "denied", "source-rate", "disabled"}

func (a AcceptOutcome) String() string { return acceptOutcomeNames[a] }

// Limit names why a listener stopped accepting.
type Limit uint8

const (
	LimitGlobal   Limit = iota // global maxconn reached
	LimitFrontend              // frontend maxconn reached
	LimitArena                 // this worker's session slab is empty
	LimitSystem                // EMFILE/ENFILE/ENOMEM/ENOBUFS or maxsock: 100 ms pause
	LimitRate                  // the frontend\'s rate_limit: resume when the rate allows
	limitCount
)

var limitNames = [...]string{"global-maxconn", "frontend-maxconn", "arena", "system", "rate"}

func (l Limit) String() string { return limitNames[l] }

// One name per value of each enum: a value or a name added alone does
// not compile.
var (
	_ [reasonCount]string         = reasonNames
	_ [acceptOutcomeCount]string  = acceptOutcomeNames
	_ [limitCount]string          = limitNames
	_ [proxyReasonCount]string    = proxyReasonNames
	_ [inspectOutcomeCount]string = inspectOutcomeNames
)

// Counters are one worker's event counts: plain integers owned by the
// worker's loop, copied out through the loop when someone asks (Stats).
type Counters struct {
	Accepted       uint64                      // sessions started
	AcceptOutcomes [acceptOutcomeCount]uint64  // by outcome, AcceptOK included
	AcceptErrors   uint64                      // accept completions with an error
	Parked         uint64                      // accepted fds that waited for a slot
	Paused         [limitCount]uint64          // times a listener stopped, by cause
	Ended          [reasonCount]uint64         // sessions ended, by reason
	ConnAttempts   uint64                      // connects started
	ConnFailures   uint64                      // connects that failed (refused, timeout, ...)
	ConnTimeouts   uint64                      // connects cancelled by timeout_connect
	Retries        uint64                      // connects after the first
	Redispatches   uint64                      // retries sent to another server
	BufWaits       uint64                      // receives that found the buffer pool empty
	SocketBackoffs uint64                      // server sockets delayed because our fd table was full
	HandedOver     uint64                      // parked clients a stopping generation passed to the one that took over
	Spliced        uint64                      // channels switched to splice (long streams)
	SpliceFailures uint64                      // switches that found no pipe (fd shortage): stayed on buffers
	ProxyErrors    [proxyReasonCount]uint64    // PROXY header failures, by reason
	Inspected      [inspectOutcomeCount]uint64 // sessions routed on their first bytes, by what they were
	Queued         uint64                      // sessions that waited for a server slot
	QueueWaitNs    uint64                      // total time sessions spent queued
	Late           uint64                      // completions for a recycled slot, dropped
	BytesIn        uint64                      // client → server
	BytesOut       uint64                      // server → client
	Turns          uint64                      // loop passes
	Completions    uint64                      // completions handled
}

// Stats is a snapshot of the whole process.
type Stats struct {
	Counters
	CurConns int64 // sessions open now, all workers
	CurQueue int64 // sessions waiting for a server slot now

	ServerTransitions uint64 // servers gone UP or DOWN by health checks
	LogDropped        uint64 // access lines lost because the writer fell behind
	MaxConns          int64  // highest CurConns seen
}

// FrontendCounters are one frontend's counts in one worker.
type FrontendCounters struct {
	Sessions uint64              // sessions started
	Ended    [reasonCount]uint64 // by reason
	BytesIn  uint64              // client → server
	BytesOut uint64              // server → client
	Refused  uint64              // clients closed at accept (denied, source rate, maxsock, ...)
}

// ServerCounters are one server's counts in one worker.
type ServerCounters struct {
	Sessions     uint64 // sessions that reached it (connected)
	ConnFailures uint64 // connects that failed
	BytesIn      uint64
	BytesOut     uint64
	Retries      uint64 // failed connects retried on it (HAProxy's wretr)
	Redispatches uint64 // sessions that left it for another server after failed connects (wredis)
}

// CounterDesc describes one process counter, a field of Stats, to the
// cold paths: gather sums it; /stats.json, /metrics and the stats page
// show it. ProcessCounters lists them all; the workers only ever touch
// the fields.
type CounterDesc struct {
	Key    string   // its key under "process" in /stats.json; "" = summed only
	Metric string   // its /metrics family without "ringproxy_"; "" = none
	Help   string   // the family's HELP text
	Label  string   // an array's label in /metrics, naming its entries
	Names  []string // an array's entry names; nil for a single value
	Unit   Unit
	Group  Group  // its box on the stats page; NoGroup = not on the page
	Row    string // a single value's row there (an array's rows are its Names)
	at     field[Stats]
}

// Unit is what a counter counts, which decides how it is shown.
type Unit uint8

const (
	UnitCount       Unit = iota // a count
	UnitBytes                   // bytes: KiB, MiB, ... on the page
	UnitNanoseconds             // time: seconds in /stats.json and on the page
)

// Group is a box of process counters on the stats page; the boxes are
// shown in this order.
type Group uint8

const (
	NoGroup Group = iota
	GroupAccept
	GroupPauses
	GroupConnects
	GroupEnded
	GroupProxy
	GroupInspect
	GroupOther
)

// field reaches one counter of a T: a single value through one, an array
// through many.
type field[T any] struct {
	one  func(*T) *uint64
	many func(*T) []uint64
}

// workerStats is what a loop hands out when asked: copies, owned by the
// asker.
type workerStats struct {
	Counters
	fe     []FrontendCounters
	srv    []ServerCounters
	routes []uint64 // routeHits
}

func (w *worker) snapshot() workerStats {
	return workerStats{Counters: w.cnt, fe: append([]FrontendCounters(nil), w.feCnt...), srv: append([]ServerCounters(nil), w.srvCnt...),
		routes: append([]uint64(nil), w.routeHits...)}
}
