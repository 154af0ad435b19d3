package ring

import (
	"time"
)

// Completion is the result of one request (or one shot of a multishot
// request). Res is what the syscall would have returned: a count, an fd, or
// a negated errno.
type Completion struct {
	UD    UserData
	Res   int32
	Flags uint32
}

const (
	cqeFBuffer = 1 << 0 // IORING_CQE_F_BUFFER: upper 16 bits hold the buffer id
	cqeFMore   = 1 << 1 // IORING_CQE_F_MORE: the multishot request stays armed
)

// Buffer reports the provided buffer a receive filled.
func (c *Completion) Buffer() (id uint16, ok bool) {
	return uint16(c.Flags >> 16), c.Flags&cqeFBuffer != 0
}

// More reports whether a multishot request stays armed after this completion.
func (c *Completion) More() bool { return c.Flags&cqeFMore != 0 }

// Engine is a proactor driven from one goroutine locked to its OS thread.
// Every request but Close yields at least one Completion with its UserData;
// a request the engine could not queue completes with a negative Res, so
// callers have one error path.
type Engine interface {
	// Accept arms a multishot accept on a listening socket. Its completions
	// carry new fds (non-blocking, close-on-exec) while More() is true.
	Accept(fd int, ud UserData)
	// AcceptOne accepts one connection: a single completion, More()
	// false. Near a limit it takes no client the limit has no room for,
	// where a multishot accept hands over what the backlog holds before
	// a cancel can stop it.
	AcceptOne(fd int, ud UserData)
	// Recv receives into buffers the engine picks from its pool;
	// Completion.Buffer names each. Where the kernel has multishot
	// receive it stays armed while More(), a completion per buffer
	// filled, until the peer's FIN (0), an error, an empty pool
	// (-ENOBUFS) or a CancelRequest of ud (-ECANCELED); elsewhere it
	// completes once.
	Recv(fd int, ud UserData)
	// Send sends n bytes of buffer id starting at off. It may complete short.
	Send(fd int, id uint16, off, n int, ud UserData)
	// SendBytes sends p, memory of the caller's that must stay untouched
	// until the completion (a few header bytes, not payload). It may
	// complete short.
	SendBytes(fd int, p []byte, ud UserData)
	// Connect starts a connect; sa must stay untouched until it completes.
	Connect(fd int, sa *Sockaddr, ud UserData)
	// Shutdown shuts the write side of fd (forwarding a half-close).
	Shutdown(fd int, ud UserData)
	// Poll completes once fd is readable (out false: data, FIN or error)
	// or writable (out true). Spliced streams wait with it.
	Poll(fd int, out bool, ud UserData)
	// SpliceIn moves up to n bytes from socket sock into pipe now, without
	// blocking: EAGAIN when sock has nothing, 0 at the peer's FIN.
	SpliceIn(sock, pipe, n int) (int, error)
	// SpliceOut moves up to n bytes from pipe into socket sock now,
	// without blocking: EAGAIN when sock takes nothing more.
	SpliceOut(pipe, sock, n int) (int, error)
	// CancelFd cancels every request queued on fd; they complete -ECANCELED.
	CancelFd(fd int, ud UserData)
	// CancelRequest cancels the requests tagged target.
	CancelRequest(target, ud UserData)
	// Close closes fd. No completion is delivered.
	Close(fd int)
	// Reset closes fd with a reset (SO_LINGER 0): the peer gets a RST and
	// the kernel drops what it had not sent, so no orphaned socket keeps
	// it. No completion is delivered.
	Reset(fd int)

	// Buffer is the memory of pool buffer id; valid until ReleaseBuffer.
	Buffer(id uint16) []byte
	// ReleaseBuffer hands buffer id back to the pool for later receives.
	ReleaseBuffer(id uint16)
	// BufferSize is the size of every pool buffer.
	BufferSize() int

	// Wait hands queued requests to the kernel, waits until at least one
	// completion is ready or timeout passes (0: do not wait), and copies up
	// to len(out) ready completions into out.
	Wait(timeout time.Duration, out []Completion) (int, error)
	// SetLoad tells the engine how many sessions had completions lately
	// and how many completions a second came, so that it waits for
	// company only when the load says it is coming soon.
	SetLoad(active, perSecond int)
	// Wake makes a Wait in progress return. Safe from any goroutine.
	Wake()
	// Release frees the engine's kernel resources. Fds it did not open are
	// the caller's to close.
	Release() error

	// Name is "uring" or "epoll".
	Name() string
}
