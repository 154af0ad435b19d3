// Package ctlnet keeps ringproxy's control-plane listeners (the admin
// socket, the stats HTTP listener) serving through what would otherwise
// end or clog them. A failed accept (EMFILE or ENFILE in a connection
// flood, ENOBUFS, ENOMEM, ECONNABORTED, ...) is retried after a growing
// pause instead of being returned, as HAProxy's listeners do, so the loop
// above never ends while the listener is open; and a connection past a
// small limit is answered and closed at once, so idle clients cannot hold
// the process's fds. The data listeners do the same in their worker loops
// (session/listener.go); these are plain Go listeners served by
// goroutines of their own.
package ctlnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The pause after a failed accept starts short, since most causes pass
// quickly (an aborted handshake, a burst of closes), and doubles up to the
// data listeners' 100 ms pause: a dozen accept calls a second cost nothing
// while the fd table stays full, and the socket answers within 100 ms of
// fds coming back.
const (
	firstBackoff = 5 * time.Millisecond
	maxBackoff   = 100 * time.Millisecond
)

// refusalWriteTimeout bounds the write of the refusal: into a connection
// just accepted it fits the socket buffer, and a client that does not
// read it must not hold up the accept loop.
const refusalWriteTimeout = 100 * time.Millisecond

// Options configures a Listener.
type Options struct {
	Name     string       // what log lines call it: "admin socket", "stats listener"
	Log      *slog.Logger // nil: slog.Default()
	MaxConns int          // connections open at once; 0: no limit
	Refusal  []byte       // written to a connection refused past MaxConns before it is closed
}

// Counts is what a Listener has counted since it was opened.
type Counts struct {
	Open         int64  // connections accepted and not closed yet
	AcceptErrors uint64 // failed accepts, each retried after a pause
	Refused      uint64 // connections closed at once past MaxConns
}

// Listener is a net.Listener whose Accept returns nothing but
// connections until Close: see the package doc. Accept must be called
// from one goroutine at a time, as http.Server and the admin loop do,
// for the limit to hold exactly.
type Listener struct {
	inner     net.Listener
	opt       Options
	closing   chan struct{}
	closeOnce sync.Once
	open      atomic.Int64
	errors    atomic.Uint64
	refused   atomic.Uint64
}

// Wrap makes ln a Listener.
func Wrap(ln net.Listener, opt Options) *Listener {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &Listener{inner: ln, opt: opt, closing: make(chan struct{})}
}

// Addr is the address listened on.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Counts returns the listener's counts now.
func (l *Listener) Counts() Counts {
	return Counts{Open: l.open.Load(), AcceptErrors: l.errors.Load(), Refused: l.refused.Load()}
}

// Close stops the listener; an Accept waiting or pausing returns.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closing) })
	return l.inner.Close()
}

// trouble is one Accept call's run of failed accepts and of refused
// connections, each logged when it starts and when it ends rather than
// once per event: a flood would otherwise write a line per retry.
type trouble struct {
	errors  uint64
	since   time.Time
	backoff time.Duration
	refused uint64
}

// Accept waits for a connection under the limit. It returns an error
// only once the listener is closed, one that wraps net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	var tr trouble
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if l.isClosed(err) {
				return nil, fmt.Errorf("%s: accept: %w", l.opt.Name, net.ErrClosed)
			}
			l.failed(&tr, err)
			if !l.pause(tr.backoff) {
				return nil, fmt.Errorf("%s: accept: %w", l.opt.Name, net.ErrClosed)
			}
			continue
		}
		l.recovered(&tr)
		if l.opt.MaxConns > 0 && l.open.Load() >= int64(l.opt.MaxConns) {
			l.refuse(&tr, c)
			continue
		}
		l.admitted(&tr)
		l.open.Add(1)
		return &conn{Conn: c, l: l}, nil
	}
}

// isClosed tells the end of the listener from trouble to wait out. An
// error after Close began is the close's, whatever it says.
func (l *Listener) isClosed(err error) bool {
	select {
	case <-l.closing:
		return true
	default:
		return errors.Is(err, net.ErrClosed)
	}
}

// failed counts a failed accept and sets the pause before the next one.
// Every error is retried, not only the ones known to pass: a control
// listener given up on is a proxy nobody can ask or steer until a
// restart, while one retried in vain costs ten calls a second and says so
// in its count.
func (l *Listener) failed(tr *trouble, err error) {
	l.errors.Add(1)
	if tr.errors == 0 {
		tr.since, tr.backoff = time.Now(), firstBackoff
		l.opt.Log.Warn(l.opt.Name+": accept failed; retrying with backoff until it works", "err", err, "max_backoff", maxBackoff)
	} else {
		tr.backoff = min(2*tr.backoff, maxBackoff)
	}
	tr.errors++
}

// recovered ends a run of failed accepts, if one was going on.
func (l *Listener) recovered(tr *trouble) {
	if tr.errors == 0 {
		return
	}
	l.opt.Log.Info(fmt.Sprintf("%s accepting again after %d errors", l.opt.Name, tr.errors),
		"errors", tr.errors, "lasted", time.Since(tr.since).Round(time.Millisecond))
	tr.errors = 0
}

// pause waits d, or less if the listener is closed meanwhile; it reports
// whether to go on.
func (l *Listener) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.closing:
		return false
	}
}

// refuse answers c with the refusal and closes it: the client learns why
// at once, and the fd is back before the next accept.
func (l *Listener) refuse(tr *trouble, c net.Conn) {
	l.refused.Add(1)
	if tr.refused == 0 {
		l.opt.Log.Warn(fmt.Sprintf("%s at its limit of %d connections: refusing new ones", l.opt.Name, l.opt.MaxConns))
	}
	tr.refused++
	if len(l.opt.Refusal) > 0 {
		_ = c.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
		_, _ = c.Write(l.opt.Refusal) // a client gone already needs no answer
	}
	_ = c.Close()
}

// admitted ends a run of refused connections, if one was going on.
func (l *Listener) admitted(tr *trouble) {
	if tr.refused == 0 {
		return
	}
	l.opt.Log.Info(fmt.Sprintf("%s below its connection limit again after refusing %d", l.opt.Name, tr.refused),
		"refused", tr.refused)
	tr.refused = 0
}

// conn is an accepted connection; closing it gives its slot back, once
// however often it is closed (net/http closes some twice).
type conn struct {
	net.Conn
	l      *Listener
	closed atomic.Bool
}

func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
	return c.Conn.Close()
}

// CloseWrite half-closes a socket that can: net/http ends an answer with
// it before closing, so the client reads the answer rather than a reset.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("close write on %T: %w", c.Conn, errors.ErrUnsupported)
}
