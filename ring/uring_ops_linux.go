package ring

import (
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// sqe takes a submission slot, zeroed: giouring's Prepare helpers leave
// fields of the slot's previous user behind. When the queue is full it
// submits to make room; if that fails too, the request completes at once
// with -EBUSY through the synthetic queue, so callers keep one error path.
func (u *Uring) sqe(ud UserData) *giouring.SubmissionQueueEntry {
	e := u.ring.GetSQE()
	if e == nil {
		_, _ = u.ring.Submit()
		if e = u.ring.GetSQE(); e == nil {
			u.fail(ud, unix.EBUSY)
			return nil
		}
	}
	*e = giouring.SubmissionQueueEntry{}
	e.UserData = uint64(ud)
	return e
}

func (u *Uring) fail(ud UserData, errno unix.Errno) {
	if ud.Op() == OpClose || ud.Op() == OpWake {
		return
	}
	u.synth = append(u.synth, Completion{UD: ud, Res: -int32(errno)})
}

// Accept implements Engine.
func (u *Uring) Accept(fd int, ud UserData) {
	if e := u.sqe(ud); e != nil {
		e.OpCode = giouring.OpAccept
		e.Fd = int32(fd)
		e.IoPrio = giouring.AcceptMultishot
		e.OpcodeFlags = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
	}
}

// AcceptOne implements Engine.
func (u *Uring) AcceptOne(fd int, ud UserData) {
	if e := u.sqe(ud); e != nil {
		e.OpCode = giouring.OpAccept
		e.Fd = int32(fd)
		e.OpcodeFlags = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
	}
}

// Recv implements Engine. Length 0 lets the kernel fill a whole buffer.
// A multishot receive stays armed on its socket's wait queue: a
// single-shot one tries the socket at once, finds it empty (the peer has
// not answered yet) and arms a poll, every time. Measured in alternating
// A/B runs on keep-alive: about 6% less proxy CPU per request at peak.
func (u *Uring) Recv(fd int, ud UserData) {
	if e := u.sqe(ud); e != nil {
		e.OpCode = giouring.OpRecv
		e.Fd = int32(fd)
		e.Flags = giouring.SqeBufferSelect
		e.BufIG = bufGroup
		if u.multiRecv {
			e.IoPrio = giouring.RecvMultishot
		}
	}
}

// Send implements Engine.
func (u *Uring) Send(fd int, id uint16, off, n int, ud UserData) {
	u.sends++
	if e := u.sqe(ud); e != nil {
		e.OpCode = giouring.OpSend
		e.Fd = int32(fd)
		e.Addr = uint64(u.arena.Addr(id) + uintptr(off))
		e.Len = uint32(n)
		e.OpcodeFlags = unix.MSG_NOSIGNAL
		if u.sendFixed {
			e.IoPrio = giouring.RecvsendFixedBuf
			e.BufIG = 0
		}
	}
}

// SendBytes implements Engine.
func (u *Uring) SendBytes(fd int, p []byte, ud UserData) {
	u.sends++
	if e := u.sqe(ud); e != nil {
		e.OpCode = giouring.OpSend
		e.Fd = int32(fd)
		e.Addr = uint64(uintptr(unsafe.Pointer(&p[0])))
		e.Len = uint32(len(p))
		e.OpcodeFlags = unix.MSG_NOSIGNAL
	}
}

// Connect implements Engine.
func (u *Uring) Connect(fd int, sa *Sockaddr, ud UserData) {
	if e := u.sqe(ud); e != nil {
		e.OpCode = giouring.OpConnect
		e.Fd = int32(fd)
		e.Addr = uint64(sa.ptr())
		e.Off = uint64(sa.len)
	}
}

// Shutdown implements Engine. IORING_OP_SHUTDOWN always runs in an io-wq
// thread (a task switch per call: 15% of the core on one-request
// connections, measured); the syscall itself does not block, so it is
// made here and its result completes through the synthetic queue.
func (u *Uring) Shutdown(fd int, ud UserData) {
	res := int32(0)
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		res = -int32(errnoOf(err))
	}
	u.synth = append(u.synth, Completion{UD: ud, Res: res})
}

// Poll implements Engine: a one-shot poll; its Res is the ready mask.
func (u *Uring) Poll(fd int, out bool, ud UserData) {
	if e := u.sqe(ud); e != nil {
		e.OpCode = giouring.OpPollAdd
		e.Fd = int32(fd)
		e.OpcodeFlags = pollMask(out) // poll32_events
	}
}

// SpliceIn implements Engine. IORING_OP_SPLICE always runs in an io-wq
// thread, a task switch per call; a non-blocking splice after a poll
// costs one syscall instead.
func (u *Uring) SpliceIn(sock, pipe, n int) (int, error) { return SpliceNow(sock, pipe, n) }

// SpliceOut implements Engine.
func (u *Uring) SpliceOut(pipe, sock, n int) (int, error) { return SpliceNow(pipe, sock, n) }

// CancelFd implements Engine.
func (u *Uring) CancelFd(fd int, ud UserData) {
	if e := u.sqe(ud); e != nil {
		e.OpCode = giouring.OpAsyncCancel
		e.Fd = int32(fd)
		e.OpcodeFlags = giouring.AsyncCancelFd | giouring.AsyncCancelAll
	}
}

// CancelRequest implements Engine.
func (u *Uring) CancelRequest(target, ud UserData) {
	if e := u.sqe(ud); e != nil {
		e.OpCode = giouring.OpAsyncCancel
		e.Fd = -1
		e.Addr = uint64(target)
	}
}

// Close implements Engine. Requests still queued on fd keep their file
// reference: callers cancel them first.
func (u *Uring) Reset(fd int) {
	resetOnClose(fd)
	u.Close(fd)
}

func (u *Uring) Close(fd int) {
	e := u.ring.GetSQE()
	if e == nil {
		// Submit first: a cancel queued for fd must reach the kernel
		// before fd is closed and its number reused.
		_, _ = u.ring.Submit()
		if e = u.ring.GetSQE(); e == nil {
			unix.Close(fd)
			return
		}
	}
	*e = giouring.SubmissionQueueEntry{}
	e.UserData = uint64(Pack(OpClose, 0, 0))
	e.OpCode = giouring.OpClose
	e.Fd = int32(fd)
}

// Buffer implements Engine.
func (u *Uring) Buffer(id uint16) []byte { return u.arena.Buf(id) }

// ReleaseBuffer implements Engine. The buffer becomes visible to the
// kernel at the next Wait.
func (u *Uring) ReleaseBuffer(id uint16) { u.bufs.add(id, u.arena) }

// BufferSize implements Engine.
func (u *Uring) BufferSize() int { return u.arena.BufSize() }
