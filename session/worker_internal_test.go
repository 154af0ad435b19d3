package session

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/ring"
)

// fakeEngine records the last request of each kind and never allocates,
// so tests can drive a worker's completion handling without a kernel.
type fakeEngine struct {
	bufs          [8][]byte
	released      []uint16
	recvs         int
	lastRecv      ring.UserData
	sends         int
	lastSend      ring.UserData
	sendLen       int
	cancels       int
	acceptCancels int
	lastCancel    ring.UserData // target of the last CancelRequest
	closes        int
	shutdowns     int
	accepts       int // multishot accepts armed
	acceptOnes    int // single-shot accepts armed
	active, rate  int // last SetLoad
}

func newFakeEngine() *fakeEngine {
	e := &fakeEngine{released: make([]uint16, 0, 1024)}
	for i := range e.bufs {
		e.bufs[i] = make([]byte, 16<<10)
	}
	return e
}

func (e *fakeEngine) Accept(int, ring.UserData)                  { e.accepts++ }
func (e *fakeEngine) AcceptOne(int, ring.UserData)               { e.acceptOnes++ }
func (e *fakeEngine) Recv(_ int, ud ring.UserData)               { e.recvs++; e.lastRecv = ud }
func (e *fakeEngine) Connect(int, *ring.Sockaddr, ring.UserData) {}
func (e *fakeEngine) Shutdown(int, ring.UserData)                { e.shutdowns++ }
func (e *fakeEngine) Poll(int, bool, ring.UserData)              {}
func (e *fakeEngine) SpliceIn(int, int, int) (int, error)        { return 0, unix.EAGAIN }
func (e *fakeEngine) SpliceOut(int, int, int) (int, error)       { return 0, unix.EAGAIN }
func (e *fakeEngine) CancelFd(int, ring.UserData)                { e.cancels++ }
func (e *fakeEngine) CancelRequest(target, _ ring.UserData) {
	e.acceptCancels++
	e.lastCancel = target
}
func (e *fakeEngine) Close(int)               { e.closes++ }
func (e *fakeEngine) Reset(int)               { e.closes++ }
func (e *fakeEngine) Buffer(id uint16) []byte { return e.bufs[id] }
func (e *fakeEngine) ReleaseBuffer(id uint16) { e.released = append(e.released, id) }
func (e *fakeEngine) BufferSize() int         { return 16 << 10 }
func (e *fakeEngine) Wake()                   {}
func (e *fakeEngine) SetLoad(n, rate int)     { e.active, e.rate = n, rate }
func (e *fakeEngine) Release() error          { return nil }
func (e *fakeEngine) Name() string            { return "fake" }
func (e *fakeEngine) Wait(time.Duration, []ring.Completion) (int, error) {
	return 0, nil
}
func (e *fakeEngine) SendBytes(_ int, p []byte, ud ring.UserData) {
	e.sends++
	e.lastSend = ud
	e.sendLen = len(p)
}
func (e *fakeEngine) Send(_ int, _ uint16, _, n int, ud ring.UserData) {
	e.sends++
	e.lastSend = ud
	e.sendLen = n
}

// fakeWorker is a worker over a fake engine with one established session.
func fakeWorker(t *testing.T) (*worker, *fakeEngine, *Session) {
	t.Helper()
	be := &Backend{Name: "app", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: time.Minute, Retries: 3,
		Servers: []*Server{{Name: "s1", Address: netip.MustParseAddrPort("127.0.0.1:9"), Weight: 100}}}
	fe := &Frontend{Name: "web", Backend: be, TimeoutClient: time.Minute}
	w, l := workerOver(t, fe, be)
	eng := w.eng.(*fakeEngine)
	w.p.actconn.Add(1)
	l.fe.cur.Add(1)
	w.startSession(l, 1000, netip.AddrPort{}) // fd 1000: never used by the fake engine
	s := w.slab.At(0)
	t.Cleanup(func() { ring.CloseNow(s.si[serverSide].fd) }) // connect's real socket
	w.complete(&ring.Completion{UD: s.tag(ring.OpConnect, serverSide), Res: 0})
	if s.state != stForwarding {
		t.Fatalf("session state %d after connect, want forwarding", s.state)
	}
	return w, eng, s
}

// workerOver is a worker over a fake engine for one frontend and its
// backends, with one listener and no session yet.
func workerOver(t testing.TB, fe *Frontend, bes ...*Backend) (*worker, *listener) {
	t.Helper()
	cfg := &Config{Global: Global{Workers: 1, MaxConn: 16, MaxAccept: 4, BufSize: 16 << 10},
		Frontends: []*Frontend{fe}, Backends: bes}
	p, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{fe: p.fes[0], fd: -1}
	w := p.newWorker(0, -1, []*listener{l})
	p.workers = []*worker{w}
	w.eng = newFakeEngine()
	return w, l
}

func recvDone(s *Session, p side, id uint16, n int32) *ring.Completion {
	return &ring.Completion{UD: s.tag(ring.OpRecv, p), Res: n, Flags: uint32(id)<<16 | 1}
}

// Forwarding a buffer (receive on one side, send on the other, buffer
// back to the pool, receive re-armed) must allocate nothing.
func TestForwardingAllocatesNothing(t *testing.T) {
	w, eng, s := fakeWorker(t)
	var id uint16
	cycle := func() {
		id = (id + 1) % 8
		w.complete(recvDone(s, clientSide, id, 1500))
		w.complete(&ring.Completion{UD: eng.lastSend, Res: int32(eng.sendLen)})
		w.complete(recvDone(s, serverSide, id, 700))
		w.complete(&ring.Completion{UD: eng.lastSend, Res: int32(eng.sendLen)})
		eng.released = eng.released[:0]
	}
	cycle()
	if s.req.bytes != 1500 || s.rep.bytes != 700 || s.state != stForwarding {
		t.Fatalf("one cycle forwarded %d/%d bytes, state %d", s.req.bytes, s.rep.bytes, s.state)
	}
	if allocs := testing.AllocsPerRun(1000, cycle); allocs != 0 {
		t.Fatalf("forwarding allocates %.2f times per buffer cycle", allocs)
	}
}

// A short send leaves the rest of the buffer queued and sends it next.
func TestShortSendResumes(t *testing.T) {
	w, eng, s := fakeWorker(t)
	w.complete(recvDone(s, clientSide, 3, 1000))
	if eng.sendLen != 1000 {
		t.Fatalf("send of %d bytes, want 1000", eng.sendLen)
	}
	w.complete(&ring.Completion{UD: eng.lastSend, Res: 400})
	if eng.sendLen != 600 || len(eng.released) != 0 {
		t.Fatalf("after a short send: next send %d bytes, released %v", eng.sendLen, eng.released)
	}
	w.complete(&ring.Completion{UD: eng.lastSend, Res: 600})
	if len(eng.released) != 1 || eng.released[0] != 3 || s.req.bytes != 1000 {
		t.Fatalf("after the rest: released %v, bytes %d", eng.released, s.req.bytes)
	}
}

// A full channel stops its producer until the consumer catches up.
func TestBackpressureStopsProducer(t *testing.T) {
	w, eng, s := fakeWorker(t)
	recvs := eng.recvs
	for i := 0; i < chanCap; i++ {
		w.complete(recvDone(s, clientSide, uint16(i), 100))
	}
	if s.req.n != chanCap || s.req.recv.inFlight() {
		t.Fatalf("channel holds %d, recv armed %v: the producer was not paused", s.req.n, s.req.recv.inFlight())
	}
	if eng.recvs != recvs+chanCap-1 {
		t.Fatalf("%d receives armed for %d buffers", eng.recvs-recvs, chanCap)
	}
	w.complete(&ring.Completion{UD: eng.lastSend, Res: 100})
	if !s.req.recv.inFlight() {
		t.Fatal("producer not re-armed after the consumer sent a buffer")
	}
}

// A multishot receive is cancelled once its channel is full; what it lands
// before the cancel takes effect is queued, not lost, and its last
// completion re-arms it only once the consumer has made room.
func TestMultishotRecvStopsWhenFull(t *testing.T) {
	w, eng, s := fakeWorker(t)
	recvs, cancels := eng.recvs, eng.acceptCancels
	more := func(id uint16) *ring.Completion {
		c := recvDone(s, clientSide, id, 100)
		c.Flags |= 1 << 1 // IORING_CQE_F_MORE: still armed
		return c
	}
	for i := 0; i < chanCap; i++ {
		w.complete(more(uint16(i)))
	}
	if eng.recvs != recvs {
		t.Fatalf("%d receives armed while the multishot one stayed armed", eng.recvs-recvs)
	}
	if s.req.recv != recvStopping || eng.acceptCancels != cancels+1 || eng.lastCancel != s.tag(ring.OpRecv, clientSide) {
		t.Fatalf("full channel: stopping %v, %d cancels of %v; want the receive cancelled once",
			s.req.recv == recvStopping, eng.acceptCancels-cancels, eng.lastCancel)
	}
	w.complete(more(chanCap)) // landed before the cancel did
	if s.req.n != chanCap+1 || eng.acceptCancels != cancels+1 {
		t.Fatalf("after a late buffer: channel holds %d, %d cancels", s.req.n, eng.acceptCancels-cancels)
	}
	w.complete(&ring.Completion{UD: s.tag(ring.OpRecv, clientSide), Res: -int32(unix.ECANCELED)})
	if s.req.recv.inFlight() || s.state != stForwarding || eng.recvs != recvs {
		t.Fatalf("cancelled while full: armed %v, state %d, %d receives", s.req.recv.inFlight(), s.state, eng.recvs-recvs)
	}
	w.complete(&ring.Completion{UD: eng.lastSend, Res: 100})
	if eng.recvs != recvs {
		t.Fatal("re-armed with the channel still full")
	}
	w.complete(&ring.Completion{UD: eng.lastSend, Res: 100})
	if !s.req.recv.inFlight() || eng.recvs != recvs+1 {
		t.Fatalf("room again: armed %v, %d receives; want one new receive", s.req.recv.inFlight(), eng.recvs-recvs)
	}
	if s.req.bytes != 200 || len(eng.released) != 2 || eng.released[0] != 0 || eng.released[1] != 1 {
		t.Fatalf("sent %d bytes, released %v; want 200 and buffers 0, 1 in order", s.req.bytes, eng.released)
	}
}

// A completion for a slot whose session has ended and been reused is
// dropped, and its buffer goes back to the pool.
func TestLateCompletionDropped(t *testing.T) {
	w, eng, s := fakeWorker(t)
	stale := s.tag(ring.OpRecv, clientSide)
	w.closeSession(s, ReasonClientError)
	// Both sides have a receive in flight: they complete cancelled.
	w.complete(&ring.Completion{UD: s.tag(ring.OpRecv, clientSide), Res: -125})
	w.complete(&ring.Completion{UD: s.tag(ring.OpRecv, serverSide), Res: -125})
	if s.state != stFree {
		t.Fatalf("session state %d after its last completion, want free", s.state)
	}
	if stale.Gen() == s.gen {
		t.Fatal("generation not bumped on release")
	}
	eng.released = eng.released[:0]
	late := late(stale, 5)
	w.complete(&late)
	if w.cnt.Late != 1 || len(eng.released) != 1 || eng.released[0] != 5 {
		t.Fatalf("late completion: counted %d, released %v", w.cnt.Late, eng.released)
	}
	if s.state != stFree || s.inflight != 0 {
		t.Fatalf("late completion touched the free slot: state %d inflight %d", s.state, s.inflight)
	}
}

func late(ud ring.UserData, id uint16) ring.Completion {
	return ring.Completion{UD: ud, Res: 10, Flags: uint32(id)<<16 | 1}
}

// Two channels wait for buffers and one buffer comes back: both are
// re-armed, since the first one's peer may be idle and take no buffer.
func TestBufferComingBackRearmsEveryWaiter(t *testing.T) {
	w, _, a := fakeWorker(t)
	// second session
	l := w.listeners[0]
	w.p.actconn.Add(1)
	l.fe.cur.Add(1)
	w.startSession(l, 1001, netip.AddrPort{})
	b := w.slab.At(1)
	t.Cleanup(func() { ring.CloseNow(b.si[serverSide].fd) })
	w.complete(&ring.Completion{UD: b.tag(ring.OpConnect, serverSide), Res: 0})

	enobufs := int32(-int32(unix.ENOBUFS))
	// a: client recv finds the pool empty; b: client recv finds the pool empty.
	w.complete(&ring.Completion{UD: a.tag(ring.OpRecv, clientSide), Res: enobufs})
	w.complete(&ring.Completion{UD: b.tag(ring.OpRecv, clientSide), Res: enobufs})
	// a buffer comes back (e.g. a server-side send of a third session completed)
	w.releaseBuf(7)
	w.Turn()
	if !a.req.recv.inFlight() {
		t.Fatal("first waiter not re-armed")
	}
	// a's client is idle: its receive stays pending and takes no buffer.
	// Many quiet turns pass; nothing else releases a buffer.
	for i := 0; i < 10; i++ {
		w.Turn()
	}
	if !b.req.recv.inFlight() {
		t.Fatalf("second waiter still parked (receive state %d) with a free buffer in the pool: it stalls until its timeout", b.req.recv)
	}
}

// A session that finds its server full waits without reading its client
// (so it holds no buffer), and starts when the slot frees.
func TestQueuedSessionHoldsNoBuffer(t *testing.T) {
	w, eng, a := fakeWorker(t)
	srv := a.srv
	srv.cfg.MaxConn = 1 // a holds the only slot
	srv.maxconn.Store(1)
	l := w.listeners[0]
	w.p.actconn.Add(1)
	l.fe.cur.Add(1)
	recvs := eng.recvs
	w.startSession(l, 1001, netip.AddrPort{})
	b := w.slab.At(1)
	if b.state != stQueued || b.req.recv.inFlight() || eng.recvs != recvs {
		t.Fatalf("queued session: state %d, client read armed %v (%d receives)", b.state, b.req.recv.inFlight(), eng.recvs-recvs)
	}
	w.closeSession(a, ReasonClientError)
	w.complete(&ring.Completion{UD: a.tag(ring.OpRecv, clientSide), Res: -125})
	w.complete(&ring.Completion{UD: a.tag(ring.OpRecv, serverSide), Res: -125})
	w.Turn()
	t.Cleanup(func() { ring.CloseNow(b.si[serverSide].fd) })
	if b.state != stConnecting || b.srv != srv || !b.req.recv.inFlight() || w.cnt.Queued != 1 {
		t.Fatalf("after the slot freed: state %d, server %v, client read armed %v, queued %d", b.state, b.srv, b.req.recv.inFlight(), w.cnt.Queued)
	}
}

// A cancel the engine could not queue (-EBUSY: its submission queue
// stayed full) is issued again: for an aborted session, and for a
// listener being stopped. One that did run is not.
func TestCancelNotQueuedIsRetried(t *testing.T) {
	w, eng, s := fakeWorker(t)
	s.inflight++ // a receive in flight: the abort must cancel
	w.closeSession(s, ReasonKilled)
	before := eng.cancels
	w.complete(&ring.Completion{UD: s.tag(ring.OpCancel, clientSide), Res: -int32(unix.EBUSY)})
	if eng.cancels != before+1 {
		t.Errorf("session cancel failing with EBUSY: %d cancels issued after it, want 1", eng.cancels-before)
	}
	w.complete(&ring.Completion{UD: s.tag(ring.OpCancel, clientSide), Res: 0})
	if eng.cancels != before+1 {
		t.Error("a cancel that ran was issued again")
	}

	l := w.listeners[0]
	l.idx, l.accept = 0, acceptMulti
	w.stopAccept(l)
	if eng.acceptCancels != 1 || l.accept != acceptCancelling {
		t.Fatalf("stopAccept: %d accept cancels, accept state %d", eng.acceptCancels, l.accept)
	}
	w.complete(&ring.Completion{UD: ring.Pack(ring.OpCancelAccept, 0, 0), Res: -int32(unix.EBUSY)})
	if eng.acceptCancels != 2 || l.accept != acceptCancelling {
		t.Errorf("accept cancel failing with EBUSY: %d accept cancels in all, want 2", eng.acceptCancels)
	}
}

// The engine is told how many sessions had completions in this activity
// period or the last, and forgets those idle for longer.
func TestWorkerCountsActiveSessions(t *testing.T) {
	w, eng, s := fakeWorker(t)
	start := int64(activityPeriod) * 5
	w.now = start
	w.countActive()
	w.Complete([]ring.Completion{*recvDone(s, clientSide, 1, 100)})
	w.Complete([]ring.Completion{{UD: eng.lastSend, Res: 100}})
	w.now = start // Complete read the clock
	w.countActive()
	if eng.active != 1 {
		t.Fatalf("one session with completions: engine told %d", eng.active)
	}
	w.now += int64(activityPeriod)
	w.countActive()
	if eng.active != 1 || eng.rate != 2*int(time.Second/activityPeriod) {
		t.Fatalf("the period after: engine told %d sessions, %d completions/s; want 1, %d", eng.active, eng.rate, 2*int(time.Second/activityPeriod))
	}
	w.now += int64(activityPeriod)
	w.countActive()
	if eng.active != 0 || eng.rate != 0 {
		t.Fatalf("two idle periods later: engine told %d sessions, %d completions/s; want 0, 0", eng.active, eng.rate)
	}
}
