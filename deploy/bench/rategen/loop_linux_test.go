package main

import (
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// server answers every request on loopback after delay; with closeEvery
// > 0, every closeEvery-th answer says "Connection: close".
func server(t *testing.T, delay time.Duration, closeEvery int64) (addr string, served *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served = new(atomic.Int64)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		time.Sleep(delay)
		if closeEvery > 0 && n%closeEvery == 0 {
			w.Header().Set("Connection", "close")
		}
		_, _ = w.Write([]byte("hello from the test backend\n"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), served
}

func runLoop(t *testing.T, addr string, rate float64, conns int, dur time.Duration) (*loop, time.Duration) {
	t.Helper()
	req := []byte("GET / HTTP/1.1\r\nHost: test\r\n\r\n")
	l, err := newLoop(addr, req, rate, conns, dur, 25*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	return l, l.run()
}

// TestLoopHoldsTheRate: every request of the schedule is sent and
// answered, over the length asked, and nothing else is counted.
func TestLoopHoldsTheRate(t *testing.T) {
	addr, served := server(t, 0, 0)
	const rate, conns, dur = 1000, 8, time.Second
	l, elapsed := runLoop(t, addr, rate, conns, dur)
	if l.errs != 0 {
		t.Fatalf("%d errors, the last: %v", l.errs, l.last)
	}
	// The schedule has exactly rate × dur requests; under -race a few
	// owed at the end may be dropped.
	if n := len(l.lat); n < rate*99/100 || n > rate {
		t.Errorf("%d requests answered, want %d", n, rate)
	}
	if got := served.Load(); got != int64(len(l.lat)) {
		t.Errorf("the server answered %d requests, rategen counted %d", got, len(l.lat))
	}
	if elapsed < dur-50*time.Millisecond || elapsed > dur+time.Second {
		t.Errorf("the schedule took %v, want about %v", elapsed, dur)
	}
}

// TestLoopMeasuresLatency: a backend that takes 3 ms shows in p50.
func TestLoopMeasuresLatency(t *testing.T) {
	const delay = 3 * time.Millisecond
	addr, _ := server(t, delay, 0)
	l, _ := runLoop(t, addr, 500, 16, 500*time.Millisecond)
	if l.errs != 0 || len(l.lat) < 200 {
		t.Fatalf("%d answers, %d errors (%v)", len(l.lat), l.errs, l.last)
	}
	lat := slices.Clone(l.lat)
	slices.Sort(lat)
	if p50 := time.Duration(lat[len(lat)/2]) * time.Microsecond; p50 < delay || p50 > 100*delay {
		t.Errorf("p50 %v with a backend that takes %v", p50, delay)
	}
}

// TestLoopReconnects: an answer that closes the connection is an error,
// and the connection's next due request reconnects.
func TestLoopReconnects(t *testing.T) {
	addr, _ := server(t, 0, 10)
	l, _ := runLoop(t, addr, 1000, 4, 500*time.Millisecond)
	if l.errs == 0 {
		t.Fatal("no error counted for answers that said Connection: close")
	}
	if n := len(l.lat); n < 300 {
		t.Errorf("%d answers with %d errors: the connections did not come back", n, l.errs)
	}
}

// TestLoopFailsToConnect: nothing listening is an error from newLoop.
func TestLoopFailsToConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := newLoop(addr, []byte("GET / HTTP/1.1\r\n\r\n"), 100, 2, time.Second, 0); err == nil {
		t.Fatal("newLoop connected to a closed port")
	}
}
