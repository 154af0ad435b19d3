package ring

import (
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Wait implements Engine. It returns early with the synthetic completions
// of requests that could not be queued, then with whatever the CQ holds.
func (u *Uring) Wait(timeout time.Duration, out []Completion) (int, error) {
	u.bufs.publish()
	n := copy(out, u.synth)
	u.synth = u.synth[:copy(u.synth, u.synth[n:])]
	if n > 0 || u.ring.CQReady() > 0 {
		timeout = 0
	}
	if err := u.enter(timeout); err != nil {
		return n, err
	}
	return n + u.reap(out[n:]), nil
}

// enter submits and, when timeout > 0, sleeps until a completion or the
// deadline. With DEFER_TASKRUN, completions are only produced inside this
// call, so it always asks for events.
func (u *Uring) enter(timeout time.Duration) error {
	var err error
	if timeout > 0 {
		u.ts = syscall.NsecToTimespec(int64(timeout))
		_, err = u.ring.SubmitAndWaitTimeout(1, &u.ts, nil)
	} else {
		_, err = u.ring.SubmitAndGetEvents()
	}
	switch {
	case err == nil, errors.Is(err, unix.ETIME), errors.Is(err, unix.EINTR),
		errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EBUSY):
		return nil
	}
	return err
}

// reap copies ready CQEs into out, advancing the CQ past each. Wake reads
// are re-armed here; close results are dropped.
func (u *Uring) reap(out []Completion) int {
	n := 0
	for n < len(out) {
		cqe, err := u.ring.PeekCQE()
		if err != nil || cqe == nil {
			break
		}
		c := Completion{UD: UserData(cqe.UserData), Res: cqe.Res, Flags: cqe.Flags}
		u.ring.CQAdvance(1)
		switch c.UD.Op() {
		case OpClose:
			continue
		case OpWake:
			u.armWake()
		}
		out[n] = c
		n++
	}
	return n
}
