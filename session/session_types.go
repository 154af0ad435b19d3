package session

import (
	"net/netip"

	"ringproxy/ring"
)

// Session states, one transition per line:
//
//	stFree       → stHeader      accepted, the frontend expects a PROXY header
//	stFree       → stInspect     accepted; a route needs the client's first bytes
//	stFree       → stConnecting  accepted; routed, assign found a server with room
//	stFree       → stQueued      accepted; every candidate server is full
//	stHeader     → stInspect     header read; a route needs the first bytes
//	stHeader     → stConnecting  header read; routed, assign (or stQueued, as above)
//	stInspect    → stConnecting  a route (or the default) chose the backend; assign (or stQueued)
//	stQueued     → stConnecting  a server slot freed
//	stConnecting → stConnecting  connect failed: retry on the same server
//	stConnecting → stConnecting  the last retry redispatched (or stQueued)
//	stConnecting → stForwarding  the server answered
//	any but Free → stClosing     closeSession: clean end, error or timeout
//	stClosing    → stFree        its last completion is in (finalize)
type sessState uint8

const (
	stFree    sessState = iota
	stHeader            // reading the client's PROXY header (accept_proxy)
	stInspect           // reading the client's first bytes to choose a backend (routes)
	stQueued
	stConnecting
	stForwarding
	stClosing
)

// Stream interface states, HAProxy's SI_ST_* reduced to what a TCP proxy
// needs.
type siState uint8

const (
	siIni siState = iota // no connection yet (server side before connect)
	siCon                // connect in flight
	siEst                // established
	siClo                // closed
)

// Side indexes si[]: the client is si[0], the server si[1].
type side uint8

const (
	clientSide side = 0
	serverSide side = 1
)

func (s side) peer() side { return 1 - s }

// streamInterface is one end of a session: an fd and its activity.
type streamInterface struct {
	fd      int
	state   siState
	lastAct int64 // monotonic ns of the last byte moved on this side
}

// chanCap bounds the buffers a channel asks for: a producer whose channel
// holds chanCap buffers is stopped (its receive cancelled, or not
// re-armed) until its consumer has sent. A multishot receive may land a
// few more before its cancel does, at most what one kernel wake read;
// the worker's buffer pool bounds the total.
const chanCap = 4

// segment is the part of a pool buffer still to be sent. Segments live in
// the worker's segment table, indexed by buffer id: a buffer is in at most
// one channel, so a channel is a FIFO linked through the table and can
// take every completion a multishot receive lands without a bound of its
// own.
type segment struct {
	off, len uint32
	next     uint16 // the buffer after this one in its channel
}

// channel carries one direction: filled by its producer's receives, drained
// by its consumer's sends from the same buffers. Beside the queue, its
// state is four groups, each with its invariants where it is declared:
// the receive (recvState), the send (sendArmed), the FIN (finState) and
// splicing. They hold between completions of a live session (the tests
// check them after each one: see checkSession); a closing one keeps what
// it had when it was aborted while its completions drain.
type channel struct {
	head, tail uint16    // first and last buffer id queued, while n > 0
	n          uint16    // buffers queued
	recv       recvState // the producer's receive
	// The send group: the consumer has a send of the head in flight. Only
	// while a buffer is queued (n > 0), so never while spliced, and never
	// with the FIN's shutdown: the consumer has one request at a time.
	sendArmed bool
	fin       finState // the producer's FIN, from read to forwarded
	splice    splicing // the stream through a pipe instead (splice.go)
	bytes     uint64   // forwarded to the consumer
}

// recvState is a channel's receive group: the producer's receive request.
// It is one state, not three flags: a receive being stopped is still in
// flight, and one waiting for a buffer is not, since the engine ends a
// multishot receive at an empty pool as at the FIN, an error or a cancel.
//
//	recvIdle     → recvArmed     armRecv: room, no FIN, not spliced
//	recvArmed    → recvStopping  stopRecv: the channel filled, or wants a pipe
//	recvArmed    → recvIdle      its last completion: one-shot, FIN, error
//	recvStopping → recvIdle      its last completion: -ECANCELED, or one the cancel missed
//	recvArmed    → recvNoBuffer  its last completion: -ENOBUFS (from recvStopping too)
//	recvNoBuffer → recvIdle      refillWaiters: a buffer came back, armRecv next
//
// Invariants: a receive left recvArmed has room (n < chanCap, no pipe
// wanted), otherwise it is being stopped; one stopping may land more
// buffers before its cancel does. No receive is in flight or awaited once
// the producer's FIN is read, nor while the channel is spliced. A channel
// in recvNoBuffer is in its worker's bufWait, once.
type recvState uint8

const (
	recvIdle     recvState = iota
	recvArmed              // a receive in flight
	recvStopping           // in flight, being cancelled (multishot)
	recvNoBuffer           // found the pool empty: waiting for a buffer
)

// inFlight says whether the producer has a receive in flight.
func (r recvState) inFlight() bool { return r == recvArmed || r == recvStopping }

// finState is a channel's FIN group: the producer's FIN on its way to the
// consumer, behind every byte read before it (queued buffers, or the
// pipe), then a shutdown of the consumer's write side.
//
//	finNone       → finRead        a receive (or a splice) read 0 bytes
//	finRead       → finForwarding  flush: the channel has drained; shutdown in flight
//	finForwarding → finForwarded   the shutdown completed; both forwarded ends the session
//
// Invariants: from finRead on, the producer has no receive in flight or
// awaited and no readability poll. From finForwarding on, the channel is
// empty (no buffer queued, nothing in the pipe) and no send is in flight.
type finState uint8

const (
	finNone       finState = iota
	finRead                // the producer sent its FIN; not forwarded yet
	finForwarding          // the consumer's shutdown is in flight
	finForwarded           // the consumer has had the FIN
)

// read says whether the producer has sent its FIN.
func (f finState) read() bool { return f != finNone }

// splicing is a channel's splice group (splice.go): a long stream moves
// through a pipe of its own instead of buffers.
//
//	spliceOff    → spliceWanted  noteFull: spliceAfter whole buffers in a row
//	spliceWanted → spliceOn      startSplice: drained, receive stopped, pipe made
//	spliceWanted → spliceOff     startSplice: no pipe to be had, stays on buffers
//	spliceOn     → spliceOff     finalize closes the pipe
//
// Invariants: while spliceOn no buffer is queued and no receive or send
// is in flight; pump moves the bytes and waits with a poll. A poll is in
// flight only while spliceOn: waitIn with the pipe empty (it is emptied
// before it is filled again) and no FIN read, waitOut with bytes in it,
// so never both. inPipe ≤ pipeCap, and 0 unless spliceOn.
type splicing struct {
	full    uint8      // receives in a row that filled a whole buffer
	mode    spliceMode // spliceOff, spliceWanted or spliceOn
	waitIn  bool       // a readability poll on the producer is in flight
	waitOut bool       // a writability poll on the consumer is in flight
	pipe    [2]int32   // read and write ends, while spliceOn
	pipeCap uint32     // what the pipe holds
	inPipe  uint32     // bytes in the pipe, not yet sent
}

type spliceMode uint8

const (
	spliceOff    spliceMode = iota // on buffers
	spliceWanted                   // long enough: switch once the buffers have drained
	spliceOn                       // through the pipe
)

// pending says whether the consumer has bytes to take.
func (ch *channel) pending() bool { return ch.n > 0 || ch.splice.inPipe > 0 }

// Session is one client connection and its server connection.
type Session struct {
	gen      uint32 // bumped on every reuse; completions carry it
	idx      uint32 // slot in the worker's slab
	state    sessState
	inflight uint16 // requests whose last completion has not arrived
	seenIn   uint32 // activity period of its last completion (worker.activity)

	si  [2]streamInterface
	req channel // si[0] → si[1]
	rep channel // si[1] → si[0]

	lst     *listener
	fe      *frontend
	be      *backend
	srv     *server
	srvAddr *serverAddr // the address of srv its last connect went to
	tries   int         // connect attempts made
	inQueue bool        // counted in its backend's queue
	reason  Reason      // why the session ended (set once)
	timedCn bool        // the connect in flight was cancelled by its timeout

	accepted     int64  // monotonic ns at accept
	connAt       int64  // monotonic ns the current connect started
	queuedAt     int64  // monotonic ns it started waiting for a slot
	backoffUntil int64  // our fd table was full: retry the socket then (0 = not waiting)
	queueWait    int64  // ns spent queued; -1 until it reached a server or a queue (access log Tw)
	queueAhead   int32  // sessions already in its backend's queue when it joined (%bq)
	connTime     int64  // ns the connect took, -1 if not connected (Tc)
	endPhase     byte   // where it was when it ended (access log)
	hdrPending   bool   // a send_proxy header is not fully sent yet: hold client bytes
	hdrOff       uint16 // bytes of it sent
	hdrLen       uint16
	inspectAt    int64          // monotonic ns inspection began (stInspect)
	helloNeed    uint16         // request bytes before the ClientHello is parsed again (clienthello.Need)
	nameLen      uint8          // SNI bytes in the worker's name slot (w.names); 0 = none
	peer         netip.AddrPort // client address, read only when logging

	// timer heap position and key; timerAt may be earlier than the real
	// deadline, which is recomputed when it fires.
	heapIdx int32
	timerAt int64
}

// chanFrom is the channel side s produces; chanTo the one it consumes.
func (s *Session) chanFrom(p side) *channel {
	if p == clientSide {
		return &s.req
	}
	return &s.rep
}

func (s *Session) chanTo(c side) *channel { return s.chanFrom(c.peer()) }

// tag builds the user_data of a request on side p of s.
func (s *Session) tag(op ring.Op, p side) ring.UserData {
	return ring.Pack(op, sideSlot(s.idx, p), s.gen)
}

// sideSlot packs a session's slab index and one of its sides into one
// number, as request tags and channel references carry them.
func sideSlot(idx uint32, p side) uint32 { return idx<<1 | uint32(p) }

// splitSideSlot undoes sideSlot.
func splitSideSlot(v uint32) (idx uint32, p side) { return v >> 1, side(v & 1) }
