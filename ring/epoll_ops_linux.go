package ring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// open returns fd's state for a new request and queues fd to try it; if
// fd cannot be registered the request completes at once and open is nil.
func (e *Epoll) open(fd int, ud UserData) *fdOps {
	st, err := e.state(fd)
	if err != nil {
		e.complete(ud, -int32(errnoOf(err)), 0)
		return nil
	}
	e.enqueue(fd)
	return st
}

// Accept implements Engine.
func (e *Epoll) Accept(fd int, ud UserData) {
	if st := e.open(fd, ud); st != nil {
		st.accept, st.acceptOne = ud, false
		st.listening = true
	}
}

// AcceptOne implements Engine.
func (e *Epoll) AcceptOne(fd int, ud UserData) {
	if st := e.open(fd, ud); st != nil {
		st.accept, st.acceptOne = ud, true
		st.listening = true
	}
}

// Recv implements Engine.
func (e *Epoll) Recv(fd int, ud UserData) {
	if st := e.open(fd, ud); st != nil {
		st.recv = ud
	}
}

// Send implements Engine.
func (e *Epoll) Send(fd int, id uint16, off, n int, ud UserData) {
	if st := e.open(fd, ud); st != nil {
		st.send, st.sendID, st.sendOff, st.sendLen, st.sendBytes = ud, id, off, n, nil
	}
}

// SendBytes implements Engine.
func (e *Epoll) SendBytes(fd int, p []byte, ud UserData) {
	if st := e.open(fd, ud); st != nil {
		st.send, st.sendBytes = ud, p
	}
}

// Connect implements Engine. The connect starts now; its result is known
// at the first output edge.
func (e *Epoll) Connect(fd int, sa *Sockaddr, ud UserData) {
	st, err := e.state(fd)
	if err != nil {
		e.complete(ud, -int32(errnoOf(err)), 0)
		return
	}
	_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), sa.ptr(), uintptr(sa.len))
	switch errno {
	case 0:
		e.complete(ud, 0, 0)
	case unix.EINPROGRESS:
		st.connect = ud
		st.writable = false // only the edge tells when it is done
	default:
		e.complete(ud, -int32(errno), 0)
	}
}

// Poll implements Engine. It completes at once while fd is thought ready:
// a splice that then meets EAGAIN clears that (SpliceIn, SpliceOut).
func (e *Epoll) Poll(fd int, out bool, ud UserData) {
	if st := e.open(fd, ud); st != nil {
		if out {
			st.pollOut = ud
		} else {
			st.pollIn = ud
		}
	}
}

// SpliceIn implements Engine.
func (e *Epoll) SpliceIn(sock, pipe, n int) (int, error) {
	m, err := SpliceNow(sock, pipe, n)
	if err == unix.EAGAIN && sock < len(e.fds) {
		e.fds[sock].readable = false
	}
	return m, err
}

// SpliceOut implements Engine.
func (e *Epoll) SpliceOut(pipe, sock, n int) (int, error) {
	m, err := SpliceNow(pipe, sock, n)
	if err == unix.EAGAIN && sock < len(e.fds) {
		e.fds[sock].writable = false
	}
	return m, err
}

// Shutdown implements Engine.
func (e *Epoll) Shutdown(fd int, ud UserData) {
	res := int32(0)
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		res = -int32(errnoOf(err))
	}
	e.complete(ud, res, 0)
}

// CancelFd implements Engine.
func (e *Epoll) CancelFd(fd int, ud UserData) {
	if fd < 0 || fd >= len(e.fds) {
		return
	}
	st := &e.fds[fd]
	e.cancel(&st.accept)
	e.cancel(&st.recv)
	e.cancel(&st.send)
	e.cancel(&st.connect)
	e.cancel(&st.pollIn)
	e.cancel(&st.pollOut)
}

func (e *Epoll) cancel(req *UserData) {
	if *req != 0 {
		e.complete(*req, -int32(unix.ECANCELED), 0)
		*req = 0
	}
}

// CancelRequest implements Engine. Only accepts are cancelled by tag; they
// are few, so a scan of the queued fds' accepts is enough.
func (e *Epoll) CancelRequest(target, ud UserData) {
	for fd := range e.fds {
		if st := &e.fds[fd]; st.accept == target && target != 0 {
			e.complete(target, -int32(unix.ECANCELED), 0)
			st.accept = 0
			return
		}
	}
}

// Close implements Engine. Closing an fd removes it from the epoll set
// only when it was the socket's last fd. A listening socket may have
// another, a newer generation's dup after a reload: it is removed first,
// or its edges would keep coming here under a number since reused.
func (e *Epoll) Reset(fd int) {
	resetOnClose(fd)
	e.Close(fd)
}

func (e *Epoll) Close(fd int) {
	if fd >= 0 && fd < len(e.fds) {
		if e.fds[fd].listening {
			_ = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		}
		e.fds[fd] = fdOps{}
	}
	unix.Close(fd)
}

// run tries every queued fd's requests until each has completed or hit
// EAGAIN.
func (e *Epoll) run() {
	for len(e.runq) > 0 {
		q := e.runq
		e.runq = e.spare[:0] // progress may queue fds again
		for _, fd := range q {
			st := &e.fds[fd]
			st.queued = false
			e.progress(int(fd), st)
		}
		e.spare = q[:0]
	}
}

func (e *Epoll) progress(fd int, st *fdOps) {
	if st.readable && st.accept != 0 {
		e.doAccept(fd, st)
	}
	if st.readable && st.recv != 0 {
		e.doRecv(fd, st)
	}
	if st.writable && st.connect != 0 {
		e.doConnect(fd, st)
	}
	if st.writable && st.send != 0 {
		e.doSend(fd, st)
	}
	if st.readable && st.pollIn != 0 {
		e.complete(st.pollIn, int32(unix.POLLIN), 0)
		st.pollIn = 0
	}
	if st.writable && st.pollOut != 0 {
		e.complete(st.pollOut, int32(unix.POLLOUT), 0)
		st.pollOut = 0
	}
}

// doAccept accepts up to a batch; the accept stays armed (More) like a
// multishot accept, and the fd is requeued if the batch was full.
func (e *Epoll) doAccept(fd int, st *fdOps) {
	for i := 0; i < batch; i++ {
		nfd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch errno {
		case 0:
			if st.acceptOne {
				e.complete(st.accept, int32(nfd), 0)
				st.accept, st.acceptOne = 0, false
				return
			}
			e.complete(st.accept, int32(nfd), cqeFMore)
			continue
		case unix.EAGAIN:
			st.readable = false
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue
		}
		e.complete(st.accept, -int32(errno), 0) // ends the "multishot"
		st.accept, st.acceptOne = 0, false
		return
	}
	e.enqueue(fd)
}

func (e *Epoll) doRecv(fd int, st *fdOps) {
	if len(e.free) == 0 {
		e.complete(st.recv, -int32(unix.ENOBUFS), 0)
		st.recv = 0
		return
	}
	id := e.free[len(e.free)-1]
	buf := e.arena.Buf(id)
	n, _, errno := unix.Syscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	switch {
	case errno == unix.EAGAIN:
		st.readable = false
		return
	case errno != 0:
		e.complete(st.recv, -int32(errno), 0)
	case n == 0:
		e.complete(st.recv, 0, 0)
	default:
		e.free = e.free[:len(e.free)-1]
		e.complete(st.recv, int32(n), uint32(id)<<16|cqeFBuffer)
	}
	st.recv = 0
}

func (e *Epoll) doSend(fd int, st *fdOps) {
	buf := st.sendBytes
	if buf == nil {
		buf = e.arena.Buf(st.sendID)[st.sendOff : st.sendOff+st.sendLen]
	}
	n, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_NOSIGNAL, 0, 0)
	switch errno {
	case unix.EAGAIN:
		st.writable = false
		return
	case 0:
		e.complete(st.send, int32(n), 0)
	default:
		e.complete(st.send, -int32(errno), 0)
	}
	st.send = 0
}

func (e *Epoll) doConnect(fd int, st *fdOps) {
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		soerr = int(errnoOf(err))
	}
	e.complete(st.connect, -int32(soerr), 0)
	st.connect = 0
}

func errnoOf(err error) unix.Errno {
	if errno, ok := err.(unix.Errno); ok {
		return errno
	}
	return unix.EIO
}
