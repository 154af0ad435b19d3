package ring

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/mempool"
)

// Epoll is the epoll engine: the same proactor contract as Uring, emulated
// with readiness and non-blocking syscalls, so sessions cannot tell which
// engine runs them. Receives take buffers from the same kind of arena,
// through a free list instead of a kernel buffer ring.
//
// Every fd is registered once, edge-triggered for input and output, and
// its readiness is remembered here (gnet's scheme): a request is tried
// as soon as it is queued if the fd may be ready, and otherwise when an
// edge arrives. Not safe for concurrent use, except Wake.
type Epoll struct {
	epfd   int
	arena  *mempool.Arena
	free   []uint16 // free buffer ids, used as a stack
	fds    []fdOps  // per fd, indexed by fd number
	runq   []int32  // fds with a request that may make progress
	spare  []int32  // the other run queue, swapped with runq by run
	ready  []Completion
	events []unix.EpollEvent

	wakeMu sync.RWMutex
	wakeFd int
}

// fdOps is what is queued on one fd. At most one request of each kind is
// in flight per fd, as with the sessions' use of Uring.
type fdOps struct {
	registered bool
	readable   bool // no EAGAIN on read since the last input edge
	writable   bool // no EAGAIN on write since the last output edge
	queued     bool // in runq
	listening  bool // has had an accept: the socket may be shared (see Close)
	accept     UserData
	acceptOne  bool // accept completes once, not "multishot"
	recv       UserData
	send       UserData
	connect    UserData
	pollIn     UserData
	pollOut    UserData
	sendID     uint16
	sendOff    int
	sendLen    int
	sendBytes  []byte // SendBytes' memory; nil for arena sends
}

const epollEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

// NewEpoll builds an epoll engine over arena.
func NewEpoll(arena *mempool.Arena) (*Epoll, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: create: %w", err)
	}
	e := &Epoll{epfd: epfd, arena: arena, wakeFd: -1,
		free:   make([]uint16, 0, arena.Count()),
		fds:    make([]fdOps, 1024),
		runq:   make([]int32, 0, 1024),
		spare:  make([]int32, 0, 1024),
		ready:  make([]Completion, 0, 1024),
		events: make([]unix.EpollEvent, batch),
	}
	for i := arena.Count() - 1; i >= 0; i-- {
		e.free = append(e.free, uint16(i))
	}
	if e.wakeFd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		e.Release()
		return nil, fmt.Errorf("epoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(e.wakeFd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, e.wakeFd, &ev); err != nil {
		e.Release()
		return nil, fmt.Errorf("epoll: add wake eventfd: %w", err)
	}
	return e, nil
}

// Name implements Engine.
func (e *Epoll) Name() string { return "epoll" }

// Release implements Engine.
func (e *Epoll) Release() error {
	e.wakeMu.Lock()
	if e.wakeFd >= 0 {
		unix.Close(e.wakeFd)
		e.wakeFd = -1
	}
	e.wakeMu.Unlock()
	if e.epfd >= 0 {
		unix.Close(e.epfd)
		e.epfd = -1
	}
	return nil
}

// SetLoad implements Engine: epoll has no way to wait for several
// events at once.
func (e *Epoll) SetLoad(int, int) {}

// Wake implements Engine.
func (e *Epoll) Wake() {
	e.wakeMu.RLock()
	defer e.wakeMu.RUnlock()
	if e.wakeFd >= 0 {
		one := [8]byte{1}
		_, _ = unix.Write(e.wakeFd, one[:])
	}
}

// Buffer implements Engine.
func (e *Epoll) Buffer(id uint16) []byte { return e.arena.Buf(id) }

// ReleaseBuffer implements Engine.
func (e *Epoll) ReleaseBuffer(id uint16) { e.free = append(e.free, id) }

// BufferSize implements Engine.
func (e *Epoll) BufferSize() int { return e.arena.BufSize() }

// Wait implements Engine: run what may progress, wait for edges if nothing
// is ready, run again, and hand out completions.
func (e *Epoll) Wait(timeout time.Duration, out []Completion) (int, error) {
	e.run()
	if len(e.ready) > 0 {
		timeout = 0
	}
	n, err := e.wait(timeout)
	if err != nil {
		return 0, err
	}
	for i := 0; i < n; i++ {
		e.edge(&e.events[i])
	}
	e.run()
	k := copy(out, e.ready)
	e.ready = e.ready[:copy(e.ready, e.ready[k:])]
	return k, nil
}

// wait is epoll_wait for up to timeout, resumed after signals (the Go
// runtime's own interrupt it).
func (e *Epoll) wait(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		ms := 0
		if timeout > 0 {
			ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
		}
		n, err := unix.EpollWait(e.epfd, e.events, ms)
		if err != unix.EINTR {
			if err != nil {
				return 0, fmt.Errorf("epoll_wait: %w", err)
			}
			return n, nil
		}
		if timeout = time.Until(deadline); timeout <= 0 {
			return 0, nil
		}
	}
}

// edge records the readiness an event reports and queues the fd.
func (e *Epoll) edge(ev *unix.EpollEvent) {
	fd := int(ev.Fd)
	if fd == e.wakeFd {
		var b [8]byte
		_, _ = unix.Read(fd, b[:])
		e.complete(Pack(OpWake, 0, 0), 8, 0)
		return
	}
	if fd >= len(e.fds) || !e.fds[fd].registered {
		return
	}
	st := &e.fds[fd]
	if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		st.readable = true
	}
	if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		st.writable = true
	}
	e.enqueue(fd)
}

func (e *Epoll) complete(ud UserData, res int32, flags uint32) {
	e.ready = append(e.ready, Completion{UD: ud, Res: res, Flags: flags})
}

func (e *Epoll) enqueue(fd int) {
	if st := &e.fds[fd]; !st.queued {
		st.queued = true
		e.runq = append(e.runq, int32(fd))
	}
}

// state returns fd's entry, registering fd with epoll on first use.
func (e *Epoll) state(fd int) (*fdOps, error) {
	for fd >= len(e.fds) {
		e.fds = append(e.fds, make([]fdOps, len(e.fds))...)
	}
	st := &e.fds[fd]
	if !st.registered {
		ev := unix.EpollEvent{Events: epollEvents, Fd: int32(fd)}
		if err := unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, err
		}
		*st = fdOps{registered: true, readable: true, writable: true}
	}
	return st, nil
}
