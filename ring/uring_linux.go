package ring

import (
	"fmt"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"

	"ringproxy/mempool"
)

// Kernel constants giouring lacks.
const (
	featRecvSendBundle = 1 << 14 // IORING_FEAT_RECVSEND_BUNDLE (6.10)
	featMinTimeout     = 1 << 15 // IORING_FEAT_MIN_TIMEOUT (6.12)
	bufGroup           = 0       // the one provided-buffer group of a ring
	maxBufRingEntries  = 1 << 15 // the kernel's limit for a buffer ring
)

// UringConfig sizes an io_uring engine.
type UringConfig struct {
	Entries uint32         // SQ entries; the CQ gets twice as many
	Arena   *mempool.Arena // receive/send memory; at most 32768 buffers
	Flags   uint32         // setup flags; 0 = the best the probe found
	// BatchWait is how long a completion may wait for others when the
	// loop is busy; 0 wakes for every completion.
	BatchWait time.Duration
	// BusyPoll is how long a loop about to sleep may poll first, when its
	// recent waits were that short (busyPoll); 0: never.
	BusyPoll time.Duration
}

// Uring is the io_uring engine. Not safe for concurrent use: create it on
// the loop's locked OS thread and use it only there (single issuer).
type Uring struct {
	ring      *giouring.Ring
	setup     uint32 // setup flags in force
	arena     *mempool.Arena
	bufs      bufRing
	sendFixed bool // the arena is fixed buffer 0 and plain sends can use it
	multiRecv bool // receives are multishot

	ts      syscall.Timespec // the wait deadline; must outlive the enter
	arg     getEventsArg     // points at ts while a wait has a deadline
	wakeMu  sync.RWMutex     // Wake (any goroutine) against Release closing wakeFd
	wakeFd  int
	wakeBuf [8]byte // the eventfd read lands here while the engine lives

	// enterFd and enterFlags are what io_uring_enter is called with: the
	// ring's index in this thread's registered rings (and
	// IORING_ENTER_REGISTERED_RING) when registering worked, so no enter
	// looks the ring's file up and refcounts it; else the ring's fd and 0.
	enterFd    int
	enterFlags uint32
	regRing    bool // enterFd is a registered-ring index, to unregister in Release

	synth   []Completion // results of requests that could not be queued
	batch   batchWait
	sends   uint32 // sends queued since the last Wait (see waitMin)
	minWait bool   // the kernel has min_wait_usec (IORING_FEAT_MIN_TIMEOUT)
	poll    busyPoll
	rx      trialSample   // running totals the busy-poll trial measures
	cpuTs   unix.Timespec // the thread's CPU clock, read into here by trialStep
}

// NewUring sets up a ring, its provided buffer ring over cfg.Arena, and its
// wake eventfd. The calling goroutine must stay locked to its OS thread and
// be the only one to use the engine.
func NewUring(cfg UringConfig) (*Uring, error) {
	return newUring(cfg, Probe())
}

// newUring is NewUring with the kernel's features given, so tests can
// play an older kernel.
func newUring(cfg UringConfig, f Features) (*Uring, error) {
	if err := f.UringUsable(); err != nil {
		return nil, err
	}
	if cfg.Arena.Count() > maxBufRingEntries {
		return nil, fmt.Errorf("io_uring: %d buffers exceed the buffer ring limit of %d", cfg.Arena.Count(), maxBufRingEntries)
	}
	flags := cfg.Flags
	if flags == 0 {
		flags = f.SetupFlags
	}
	u := &Uring{ring: giouring.NewRing(), setup: flags, arena: cfg.Arena, wakeFd: -1}
	u.batch.window, u.batch.want = cfg.BatchWait, 1
	u.minWait = f.MinWait
	u.poll.limit = cfg.BusyPoll
	if err := u.ring.QueueInit(cfg.Entries, flags); err != nil {
		return nil, fmt.Errorf("io_uring: setup with %d entries, flags %#x: %w", cfg.Entries, flags, err)
	}
	if err := u.init(f); err != nil {
		u.Release()
		return nil, err
	}
	return u, nil
}

func (u *Uring) init(f Features) error {
	if err := u.bufs.register(u.ring, u.arena, bufGroup); err != nil {
		return err
	}
	// Registering pins (and so populates) the whole arena: only worth it
	// when sends can use it.
	if f.RegisteredBuffers && f.FixedBufferSend {
		if err := registerArena(u.ring, u.arena); err != nil {
			return err
		}
		u.sendFixed = true
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("io_uring: eventfd: %w", err)
	}
	u.wakeFd = fd
	u.registerRing()
	u.multiRecv = f.MultishotRecv
	u.armWake()
	u.synth = make([]Completion, 0, 64)
	return nil
}

// registerArena makes the arena fixed buffer 0, so sends can skip pinning
// pages on every request.
func registerArena(r *giouring.Ring, a *mempool.Arena) error {
	iov := []syscall.Iovec{{Base: &a.Bytes()[0], Len: uint64(a.Len())}}
	ret, errno := r.Register(r.RingFd(), giouring.RegisterBuffers, unsafe.Pointer(&iov[0]), 1)
	if errno != 0 || int(ret) < 0 {
		return fmt.Errorf("io_uring: register %d bytes of buffers: %w", a.Len(), errno)
	}
	return nil
}

// registerRing registers the ring's fd with the calling thread (Linux
// 5.18+), so io_uring_enter skips the fd table: with hundreds of sockets
// open, fget on the ring was about 1 % of the loop's CPU. On an older
// kernel, or with the thread's 16 slots taken, enter uses the plain fd.
// giouring's RegisterRingFd is not used: it makes giouring's own register
// calls switch to the index, and its UnregisterRingFd never unregisters.
func (u *Uring) registerRing() {
	u.enterFd, u.enterFlags = u.ring.RingFd(), 0
	upd := giouring.RsrcUpdate{Offset: ^uint32(0), Data: uint64(u.ring.RingFd())} // ^0: any free slot
	ret, errno := u.ring.Register(u.ring.RingFd(), giouring.RegisterRingFDs, unsafe.Pointer(&upd), 1)
	if errno != 0 || ret != 1 {
		return
	}
	u.enterFd, u.enterFlags, u.regRing = int(upd.Offset), giouring.EnterRegisteredRing, true
}

// unregisterRing frees the thread's slot, which otherwise holds the ring's
// file (and everything registered with it) until the thread exits.
func (u *Uring) unregisterRing() {
	if !u.regRing {
		return
	}
	upd := giouring.RsrcUpdate{Offset: uint32(u.enterFd)}
	_, _ = u.ring.Register(u.ring.RingFd(), giouring.UnregisterRingFDs, unsafe.Pointer(&upd), 1)
	u.regRing = false
}

// Release unregisters and closes everything the engine opened. The arena
// stays the caller's.
func (u *Uring) Release() error {
	if u.ring == nil {
		return nil
	}
	// Requests queued since the last Wait (the closes of the last
	// sessions, typically) still reach the kernel.
	_, _ = u.ring.Submit()
	u.unregisterRing()
	u.ring.QueueExit() // closing the ring drops its registrations
	u.ring = nil
	err := u.bufs.unmap()
	u.wakeMu.Lock()
	if u.wakeFd >= 0 {
		unix.Close(u.wakeFd)
		u.wakeFd = -1
	}
	u.wakeMu.Unlock()
	return err
}

// Name implements Engine.
func (u *Uring) Name() string { return "uring" }

// SetLoad implements Engine.
func (u *Uring) SetLoad(active, perSecond int) { u.batch.setLoad(active, perSecond) }

// Wake implements Engine: a write to the eventfd completes the read the
// loop keeps armed on it. After Release it does nothing: the fd number may
// already belong to someone else.
func (u *Uring) Wake() {
	u.wakeMu.RLock()
	defer u.wakeMu.RUnlock()
	if u.wakeFd < 0 {
		return
	}
	one := [8]byte{1}
	// EAGAIN means the counter is saturated: a wake is pending anyway.
	_, _ = unix.Write(u.wakeFd, one[:])
}

func (u *Uring) armWake() {
	e := u.sqe(Pack(OpWake, 0, 0))
	if e == nil {
		return
	}
	e.OpCode = giouring.OpRead
	e.Fd = int32(u.wakeFd)
	e.Addr = uint64(uintptr(unsafe.Pointer(&u.wakeBuf[0])))
	e.Len = uint32(len(u.wakeBuf))
}
