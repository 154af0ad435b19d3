package session

import (
	"net/netip"
	"time"

	"ringproxy/ring"
)

// parkCap bounds the accepted fds a listener holds while it is limited or
// past maxaccept for this turn. A multishot accept may hand over the whole
// kernel backlog (listenBacklog) before a cancel lands; those connections
// wait here, connected but unserved, as they would have in the backlog.
const parkCap = 2 * listenBacklog

// systemPause is how long a listener rests after EMFILE, ENFILE, ENOMEM,
// ENOBUFS or an fd above maxsock, as HAProxy does.
const systemPause = 100 * time.Millisecond

// limitRecheck bounds how long a full listener waits if it missed the
// wakeup of a freed slot (a slot reserved and given back by another
// worker within a race window wakes nobody), as HAProxy's 1 s timer for
// configured limits does.
const limitRecheck = time.Second

// liState is what a listener does about new clients, after HAProxy's
// listener-t.h. One transition per line; resume and limit make them:
//
//	liReady   → liFull     admit: no global, frontend or arena slot
//	liReady   → liLimited  admit: over the rate; or an fd shortage (accept error, fd ≥ maxsock)
//	liFull    → liLimited  over the rate, or an fd shortage, while serving its parked clients
//	liFull    → liReady    a slot freed (or limitRecheck passed) and its parked clients have sessions
//	liLimited → liFull     retryAt passed; a parked client found no slot
//	liLimited → liReady    retryAt passed and its parked clients have sessions
//	any open  → liPaused   an operator disabled its frontend (pauseListener); limits are not applied meanwhile
//	liPaused  → liReady    the frontend was enabled again (unpauseListener)
//	any       → liClosed   the worker stopped, the accept ended and no client is parked (rearm); or the loop failed (abandon)
//
// A listener is never left liFull or liLimited without retryAt: a
// limit that nobody lifts would stop it for good. The worker's stop is
// not a listener state: a stopped worker's listeners arm nothing and
// close as the last line says, whatever they were.
type liState uint8

const (
	liReady   liState = iota // rearm arms an accept whenever none is in flight and none is parked
	liFull                   // a slot limit stands (limit); a slot freeing anywhere resumes it
	liLimited                // a time limit stands (limit): rate or fd shortage; resumes at retryAt
	liPaused                 // disable frontend: no accept, its socket refuses clients
	liClosed                 // socket closed; final
)

// acceptState is the listener's accept request in the engine, apart from
// liState: a listener that leaves liReady cancels its accept, and the
// accept stays in flight until its last completion says so.
//
//	acceptIdle       → acceptMulti       rearm, while roomy
//	acceptIdle       → acceptOne         rearm, nearer a limit
//	acceptMulti/One  → acceptCancelling  stopAccept
//	acceptCancelling → acceptMulti       the cancel found no room in the engine: retried (onAcceptCancel)
//	any              → acceptIdle        a completion without more to come (onAccept)
type acceptState uint8

const (
	acceptIdle       acceptState = iota
	acceptMulti                  // multishot: every client the backlog holds
	acceptOne                    // single-shot (see roomy)
	acceptCancelling             // its cancel is in flight
)

// listener is one worker's SO_REUSEPORT socket for one bind of a frontend.
type listener struct {
	idx         uint32 // index in worker.listeners, the accept's slot
	fe          *frontend
	fd          int
	addr        netip.AddrPort
	state       liState
	accept      acceptState
	limit       Limit  // liFull, liLimited: which limit stands
	retryAt     int64  // liFull, liLimited: look again then (monotonic ns)
	turnAccepts int    // sessions started this loop turn (maxaccept)
	errBurst    uint64 // accept errors in the current burst (see errorBurstGap)
	lastErr     int64  // monotonic ns of the last accept error
	parked      fdQueue
}

func (l *listener) tag() ring.UserData { return ring.Pack(ring.OpAccept, l.idx, 0) }

// waiting says whether l is waiting for a limit to pass.
func (l *listener) waiting() bool { return l.state == liFull || l.state == liLimited }

// fdQueue is a fixed FIFO of accepted fds.
type fdQueue struct {
	fds     [parkCap]int32
	head, n int
}

// admitResult is the outcome of admit.
type admitResult uint8

const (
	admitted  admitResult = iota
	rejected              // closed and counted
	limitedBy             // a limit stands: the fd must wait
)

// verdict is what one accept check, or all of them, decided.
type verdict struct {
	result  admitResult
	limit   Limit         // limitedBy: which
	wait    time.Duration // limitedBy LimitRate: until the rate allows one more
	outcome AcceptOutcome // rejected: the counter it goes to
	err     error         // rejected: worth a log line (a socket option failed)
}

var pass = verdict{}

func (v verdict) passed() bool { return v.result == admitted }

func limitedAt(why Limit, wait time.Duration) verdict {
	return verdict{result: limitedBy, limit: why, wait: wait}
}

func refusal(why AcceptOutcome, err error) verdict {
	return verdict{result: rejected, outcome: why, err: err}
}
