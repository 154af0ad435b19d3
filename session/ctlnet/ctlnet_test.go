package ctlnet

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ringproxy/session/testbed"
)

// emfile is what net's Accept returns when the fd table is full.
var emfile = &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}

// flakyListener fails its next fails accepts with EMFILE, then hands out
// the connections sent on conns.
type flakyListener struct {
	fails  atomic.Int64
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newFlaky() *flakyListener {
	return &flakyListener{conns: make(chan net.Conn, 8), closed: make(chan struct{})}
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, emfile
	}
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

func (f *flakyListener) Close() error   { f.once.Do(func() { close(f.closed) }); return nil }
func (f *flakyListener) Addr() net.Addr { return &net.TCPAddr{} }

// pipe is a connection to hand out; the test keeps no other end.
func pipe(t *testing.T) net.Conn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a
}

// A burst of failed accepts is waited out with growing pauses, counted
// one by one, and logged twice: a warning naming the error when it
// starts and a line when accepting works again. The next burst is
// logged afresh.
func TestAcceptErrorBurstIsRetriedAndLoggedOnce(t *testing.T) {
	logs := &testbed.LogBuffer{}
	fl := newFlaky()
	ln := Wrap(fl, Options{Name: "test listener", Log: slog.New(slog.NewTextHandler(logs, nil))})
	fl.fails.Store(5)
	fl.conns <- pipe(t)
	start := time.Now()
	c, err := ln.Accept()
	if err != nil || c == nil {
		t.Fatalf("Accept after 5 EMFILEs: %v, %v; want the connection", c, err)
	}
	// 5+10+20+40+80 ms of pauses: waited out, not spun through.
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("5 failed accepts took %v: the listener does not back off", took)
	}
	if n := ln.Counts().AcceptErrors; n != 5 {
		t.Errorf("counted %d accept errors, want 5", n)
	}
	if n := logs.Count("level=WARN", "test listener", "too many open files"); n != 1 {
		t.Errorf("%d warnings for one burst, want 1:\n%s", n, logs)
	}
	if n := logs.Count("level=INFO", "test listener accepting again after 5 errors"); n != 1 {
		t.Errorf("%d lines for the end of the burst, want 1:\n%s", n, logs)
	}

	fl.fails.Store(2)
	fl.conns <- pipe(t)
	if _, err := ln.Accept(); err != nil {
		t.Fatalf("Accept after a second burst: %v", err)
	}
	if n, w := ln.Counts().AcceptErrors, logs.Count("level=WARN"); n != 7 || w != 2 {
		t.Errorf("after a second burst of 2: %d errors counted, %d warnings; want 7 and 2", n, w)
	}
}

// Close ends an Accept that is pausing between failed accepts, with an
// error that says the listener is closed; nothing else ends it.
func TestCloseEndsAnAcceptInBackoff(t *testing.T) {
	fl := newFlaky()
	fl.fails.Store(1 << 40)
	ln := Wrap(fl, Options{Name: "test listener", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	done := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		done <- err
	}()
	deadline := time.Now().Add(3 * time.Second)
	for ln.Counts().AcceptErrors < 8 { // past the cap of the backoff
		if time.Now().After(deadline) {
			t.Fatalf("only %d accept errors in 3s", ln.Counts().AcceptErrors)
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Accept returned %v while the listener was open", err)
	default:
	}
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Accept still pausing 1s after Close")
	}
}

// Past MaxConns a connection gets the refusal and is closed; closing an
// admitted connection (twice, as net/http may) frees one slot.
func TestRefusesPastTheLimit(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testbed.LogBuffer{}
	ln := Wrap(inner, Options{Name: "test listener", Log: slog.New(slog.NewTextHandler(logs, nil)),
		MaxConns: 2, Refusal: []byte("busy\n")})
	defer ln.Close()
	admitted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			admitted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	next := func() net.Conn {
		select {
		case c := <-admitted:
			return c
		case <-time.After(2 * time.Second):
			t.Fatal("no connection admitted")
			return nil
		}
	}
	dial()
	first := next()
	dial()
	next()
	over := dial()
	over.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := io.ReadAll(over); string(got) != "busy\n" || err != nil {
		t.Fatalf("the third connection over a limit of 2 read %q, %v; want the refusal, then EOF", got, err)
	}
	if c := ln.Counts(); c.Open != 2 || c.Refused != 1 {
		t.Errorf("counts %+v, want 2 open and 1 refused", c)
	}
	first.Close()
	first.Close()
	if n := ln.Counts().Open; n != 1 {
		t.Errorf("%d open after one connection closed twice, want 1", n)
	}
	dial()
	next()
	if w, i := logs.Count("level=WARN", "test listener at its limit of 2 connections"),
		logs.Count("level=INFO", "below its connection limit again after refusing 1"); w != 1 || i != 1 {
		t.Errorf("%d warnings and %d recoveries logged for one refusal, want 1 and 1:\n%s", w, i, logs)
	}
}
