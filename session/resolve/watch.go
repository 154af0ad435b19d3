package resolve

import (
	"errors"
	"slices"
	"time"
)

// Watch resolves q now and again until Close: after each answer's TTL,
// kept within TTLMin and TTLMax, and TTLMin after a failure. It calls
// onEvent, from its own goroutine, whenever what q holds changes: other
// targets, a failure that starts a hold (the last good answer kept,
// Held), or the end of one (no targets, Err says why). last, when it has
// targets, is the answer to start from (the previous generation's, or a
// state file's), as received at last.At.
func (r *Resolver) Watch(q Query, last Answer, onEvent func(Event)) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		w := watch{r: r, q: q, good: last, onEvent: onEvent, told: Event{Query: q, Answer: last}}
		w.run()
	}()
}

// watch is one name's re-resolution loop and what it last told.
type watch struct {
	r       *Resolver
	q       Query
	good    Answer // the last good answer; zero once its hold ran out
	told    Event  // the last event reported (or the start state)
	onEvent func(Event)
}

func (w *watch) run() {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-w.r.ctx.Done():
			return
		case <-t.C:
		}
		ans, err := w.r.Resolve(w.r.ctx, w.q)
		if w.r.ctx.Err() != nil {
			return
		}
		t.Reset(w.next(ans, err, time.Now()))
	}
}

// next applies one resolution and says when to resolve again.
func (w *watch) next(ans Answer, err error, now time.Time) time.Duration {
	cfg := w.r.cfg
	if err == nil {
		w.good = ans
		w.tell(Event{Query: w.q, Answer: ans})
		return min(max(ans.TTL, cfg.TTLMin), cfg.TTLMax)
	}
	hold := cfg.HoldValid
	if errors.Is(err, ErrNXDomain) {
		hold = cfg.HoldNX
	}
	if len(w.good.Targets) > 0 && now.Sub(w.good.At) < hold {
		w.tell(Event{Query: w.q, Answer: w.good, Err: err, Held: true})
	} else {
		w.good = Answer{}
		w.tell(Event{Query: w.q, Err: err})
	}
	return cfg.TTLMin
}

// tell reports ev unless it says what the last one did: the same
// targets, held or not, failing for the same kind of reason.
func (w *watch) tell(ev Event) {
	if slices.Equal(ev.Answer.Targets, w.told.Answer.Targets) && ev.Held == w.told.Held && errKind(ev.Err) == errKind(w.told.Err) {
		return
	}
	w.told = ev
	if w.onEvent != nil {
		w.onEvent(ev)
	}
}

// errKind is which of the package's errors err is, or err itself.
func errKind(err error) error {
	for _, k := range []error{ErrNXDomain, ErrNoRecord, ErrTimeout, ErrRefused} {
		if errors.Is(err, k) {
			return k
		}
	}
	if err != nil {
		return errOther
	}
	return nil
}

var errOther = errors.New("another failure")
