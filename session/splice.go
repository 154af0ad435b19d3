package session

import (
	"golang.org/x/sys/unix"

	"ringproxy/ring"
)

// Splicing, as HAProxy's splice-auto: a channel whose receives keep
// filling whole buffers carries a long stream. Once its buffers have
// drained it switches to a pipe of its own, and the bytes go socket →
// pipe → socket by page reference: no copy through user memory, one
// non-blocking splice each way per chunk of up to a pipe's worth. The
// producer then waits with a poll instead of a receive, and the consumer
// with a poll when its socket is full. The pipe is always emptied before
// it is filled again, so an EAGAIN always means the socket is not ready.
//
// IORING_OP_SPLICE is not used: the kernel runs every one in an io-wq
// thread, a task switch per chunk (see ring.Uring.SpliceIn).

// spliceAfter is how many whole-buffer receives in a row make a stream
// long.
const spliceAfter = 4

// pipeSize is what a spliced channel's pipe asks for, as Go's io.Copy
// does; the kernel may give less.
const pipeSize = 1 << 20

// pumpRounds bounds the chunks one channel moves per event, so one fast
// stream does not hold up the loop.
const pumpRounds = 4

// noteFull counts receives that filled a whole buffer and marks the
// channel for splicing after spliceAfter in a row.
func (w *worker) noteFull(s *Session, ch *channel, n int32) {
	if !w.p.splice || s.state != stForwarding || s.hdrPending {
		return
	}
	sp := &ch.splice
	if int(n) < w.eng.BufferSize() {
		sp.full = 0
		return
	}
	if sp.full++; sp.full >= spliceAfter {
		sp.mode = spliceWanted
	}
}

// startSplice switches channel p produces, whose buffers have all been
// sent, to a pipe. Without one (the fd budget's pipes are all taken, or
// an fd shortage) it stays on buffers.
func (w *worker) startSplice(s *Session, p side) bool {
	sp := &s.chanFrom(p).splice
	sp.mode, sp.full = spliceOff, 0
	if w.p.pipes.Add(1) > w.p.maxPipes {
		w.p.pipes.Add(-1)
		w.cnt.SpliceFailures++
		return false
	}
	r, wr, capacity, err := ring.NewPipe(pipeSize)
	if err != nil {
		w.p.pipes.Add(-1)
		w.cnt.SpliceFailures++
		return false
	}
	sp.mode = spliceOn
	sp.pipe = [2]int32{int32(r), int32(wr)}
	sp.pipeCap = uint32(capacity)
	w.cnt.Spliced++
	w.pump(s, p)
	return true
}

// pump moves what it can of spliced channel p produces, and leaves a
// poll in flight for whatever it has to wait on.
func (w *worker) pump(s *Session, p side) {
	ch, c := s.chanFrom(p), p.peer()
	for range pumpRounds {
		switch {
		case s.state == stClosing:
			return
		case ch.splice.inPipe > 0:
			if !w.spliceOut(s, ch, c) {
				return
			}
		case ch.fin.read():
			w.flush(s, c) // the pipe is empty: forward the FIN
			return
		case !w.spliceIn(s, ch, p):
			return
		}
	}
	// More to do: a poll that completes at once brings this stream back
	// after the other sessions have had their turn.
	switch {
	case ch.splice.inPipe > 0:
		w.waitOut(s, c)
	case ch.fin.read():
		w.flush(s, c)
	default:
		w.waitIn(s, p)
	}
}

// spliceOut sends from the pipe to consumer c; false when it has to wait
// or the session ended.
func (w *worker) spliceOut(s *Session, ch *channel, c side) bool {
	sp := &ch.splice
	if sp.waitOut || s.si[c].state != siEst {
		return false
	}
	n, err := w.eng.SpliceOut(int(sp.pipe[0]), s.si[c].fd, int(sp.inPipe))
	if n > 0 {
		sp.inPipe -= uint32(n)
		ch.bytes += uint64(n)
		s.si[c].lastAct = w.now
	}
	switch {
	case err == unix.EAGAIN:
		w.waitOut(s, c)
		return false
	case err != nil:
		w.closeSession(s, sideError(c))
		return false
	}
	return true
}

// spliceIn fills the empty pipe from producer p; false when it has to
// wait or the session ended. A FIN moves the channel to finRead.
func (w *worker) spliceIn(s *Session, ch *channel, p side) bool {
	sp := &ch.splice
	if sp.waitIn {
		return false
	}
	n, err := w.eng.SpliceIn(s.si[p].fd, int(sp.pipe[1]), int(sp.pipeCap))
	switch {
	case err == unix.EAGAIN:
		w.waitIn(s, p)
		return false
	case err != nil:
		w.closeSession(s, sideError(p))
		return false
	case n == 0:
		ch.fin = finRead
		return true
	}
	sp.inPipe = uint32(n)
	s.si[p].lastAct = w.now
	if s.chanFrom(p.peer()).fin.read() {
		// As in onRecv: a consumer past its own FIN starts its timeout
		// now that it has bytes to take.
		s.si[p.peer()].lastAct = w.now
		w.schedule(s)
	}
	return true
}

func (w *worker) waitIn(s *Session, p side) {
	if sp := &s.chanFrom(p).splice; !sp.waitIn {
		sp.waitIn = true
		s.inflight++
		w.eng.Poll(s.si[p].fd, false, s.tag(ring.OpPollIn, p))
	}
}

func (w *worker) waitOut(s *Session, c side) {
	if sp := &s.chanTo(c).splice; !sp.waitOut {
		sp.waitOut = true
		s.inflight++
		w.eng.Poll(s.si[c].fd, true, s.tag(ring.OpPollOut, c))
	}
}

// onPoll resumes the spliced channel a poll on side q was waiting for:
// the one q produces (readable) or consumes (writable).
func (w *worker) onPoll(s *Session, q side, out bool, c *ring.Completion) {
	p := q
	if out {
		s.chanTo(q).splice.waitOut = false
		p = q.peer()
	} else {
		s.chanFrom(q).splice.waitIn = false
	}
	if s.state == stClosing {
		return
	}
	if c.Res < 0 {
		w.closeSession(s, sideError(q))
		return
	}
	w.pump(s, p)
}
