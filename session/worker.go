package session

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"ringproxy/mempool"
	"ringproxy/ring"
	"ringproxy/session/clienthello"
)

// worker is one per-core loop: its engine, its slab of sessions, its
// listeners and its timers. Only its own goroutine touches these fields,
// except the atomics, which other goroutines use to signal it.
type worker struct {
	id   int
	cpu  int // pinned CPU, -1 for none
	p    *Proxy
	log  *slog.Logger
	eng  ring.Engine
	slab *mempool.Slab[Session]

	listeners []*listener
	timers    timerHeap
	bufWait   chanQueue           // channels whose receive found the pool empty
	segs      []segment           // by buffer id: what of it a channel still has to send
	hdrs      []byte              // send_proxy header slots, hdrSlot per session; nil when unused
	hdrSlot   int                 // hdrSlot, or hdrSlotName when a v2 header may carry the SNI
	names     []byte              // SNI slots, nameSlot per session; nil when no route reads the ClientHello
	hello     clienthello.Hello   // scratch: the ClientHello being inspected
	peek      [2 * chanCap][]byte // scratch: the bytes a channel holds (queuedBytes)
	routeHits []uint64            // sessions routed, by frontend route and default (frontend.hits)
	queues    []chanQueue         // per backend: sessions waiting for a server slot
	queueDue  bool                // a slot may have freed: serve the queues this turn
	released  int                 // buffers returned to the pool this turn
	now       int64               // monotonic ns, read once per turn
	cnt       Counters
	feCnt     []FrontendCounters // by frontend index
	srvCnt    []ServerCounters   // by server index, all backends

	activity  activity
	nFull     int  // listeners in liFull: a session ending here may resume them
	resumeDue bool // look at stopped and parked listeners at the next turn
	stopped   bool // stop seen: listeners closing, no new sessions
	killed    bool // grace ran out: every session aborted

	waitSlot  atomic.Bool  // limited by a shared count: wake me when a slot frees
	queued    atomic.Int64 // my queued sessions, read by workers freeing a slot
	queueKick atomic.Bool  // another worker freed a server slot
	slotFreed atomic.Bool  // another worker freed a slot since I last looked
	adoptDue  atomic.Bool  // the previous generation handed clients over (Proxy.adopted)
	statsMu   sync.Mutex   // one Stats caller at a time per worker
	statsReq  atomic.Bool  // someone waits on statsCh
	statsCh   chan workerStats
	ctl       chan func()   // control functions to run in the loop (admin socket)
	done      chan struct{} // closed when the loop has exited
	final     workerStats   // counters at exit, read after done
	err       error         // why the loop failed, read after done
}

// chanQueue is a fixed FIFO of (slot, side, generation) naming channels.
// Each channel is in it at most once (while recvNoBuffer), so a capacity of
// two per session never overflows.
type chanQueue struct {
	q       []chanRef
	head, n int
}

type chanRef struct {
	slot uint32 // sideSlot(session index, producer side)
	gen  uint32
}

func newChanQueue(sessions int) chanQueue { return chanQueue{q: make([]chanRef, 2*sessions)} }

func (q *chanQueue) push(r chanRef) {
	q.q[(q.head+q.n)%len(q.q)] = r
	q.n++
}

func (q *chanQueue) pop() chanRef {
	r := q.q[q.head]
	q.head = (q.head + 1) % len(q.q)
	q.n--
	return r
}

// activityPeriod is the period over which a worker counts its active
// sessions: long enough that every session of a busy pool shows in it.
const activityPeriod = 10 * time.Millisecond

// activity is the worker's recent load, for the engine's batching
// (ring.Engine.SetLoad).
type activity struct {
	period         uint32 // current period number, from 1
	cur, prev      int    // sessions with completions in it, and in the one before
	from           uint64 // Counters.Completions when it began
	perSecond      int    // completions a second in the one before
	told, toldRate int    // what the engine was last told
}
