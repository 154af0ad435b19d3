package testbed

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server is a loopback TCP listener that runs one handler goroutine per
// accepted connection. Every connection is tracked so Close can unblock
// handlers stuck in Read or Write and wait for them to finish.
//
// All backends in this package embed *Server, so Addr, Accepted, Active,
// MaxActive and Close are available on each of them.
type Server struct {
	ln     *net.TCPListener
	addr   netip.AddrPort
	handle func(*net.TCPConn)

	accepted  atomic.Int64
	active    atomic.Int64
	maxActive atomic.Int64

	mu     sync.Mutex
	conns  map[*net.TCPConn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// StartFunc starts a backend on 127.0.0.1:0 that runs handle for every
// accepted connection. The connection is closed after handle returns, so
// handle only needs to close it early when the test needs that. Use it for
// one-off behaviours that the ready-made backends do not cover.
func StartFunc(t testing.TB, handle func(c *net.TCPConn)) *Server {
	t.Helper()
	s := newServer(t)
	s.start(handle)
	return s
}

// newServer listens on 127.0.0.1:0 and registers Close with t.Cleanup, but
// does not accept yet: backends whose handlers refer back to their own
// struct must finish building it before the first handler can run.
func newServer(t testing.TB) *Server {
	t.Helper()
	return newServerOn(t, "127.0.0.1:0")
}

// newServerOn is newServer on addr: "127.0.0.12:8008" for a backend that
// must share a port number with others on their own loopback addresses.
func newServerOn(t testing.TB, addr string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatalf("start backend: listen %s: %v", addr, err)
	}
	tl := ln.(*net.TCPListener)
	s := &Server{
		ln:    tl,
		addr:  tl.Addr().(*net.TCPAddr).AddrPort(),
		conns: make(map[*net.TCPConn]struct{}),
	}
	t.Cleanup(s.Close)
	return s
}

// start begins accepting and running handle for each connection.
func (s *Server) start(handle func(*net.TCPConn)) {
	s.handle = handle
	s.wg.Add(1)
	go s.acceptLoop()
}

// Addr is the address the backend listens on.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Accepted is the number of connections accepted so far.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Active is the number of connections currently open on the backend side.
func (s *Server) Active() int64 { return s.active.Load() }

// MaxActive is the largest value Active has ever had.
func (s *Server) MaxActive() int64 { return s.maxActive.Load() }

// Close stops accepting, closes every open connection and waits for all
// handler goroutines. It is safe to call more than once and is registered
// with t.Cleanup by every Start function; call it early to simulate a
// backend going away.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.ln.Close()
		for c := range s.conns {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// StopListening closes the listener alone: the connections it accepted
// go on, as a server that takes no new ones (its checks now fail) while
// its clients stay connected, a demoted primary say.
func (s *Server) StopListening() { s.ln.Close() }

// closing reports whether Close has started, which lets handlers tell a
// peer-initiated close apart from the one Close causes.
func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.closing() {
				return
			}
			// Transient failures (EMFILE during a connection storm, for
			// example) must not silently kill the backend mid-test.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !s.track(c) {
			c.Close()
			continue
		}
		go s.serve(c)
	}
}

// track registers c and counts it. It refuses once Close has started so
// Close never misses a connection it has to wait for.
func (s *Server) track(c *net.TCPConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.accepted.Add(1)
	n := s.active.Add(1)
	for {
		m := s.maxActive.Load()
		if n <= m || s.maxActive.CompareAndSwap(m, n) {
			break
		}
	}
	return true
}

func (s *Server) serve(c *net.TCPConn) {
	defer s.wg.Done()
	defer s.untrack(c)
	s.handle(c)
}

func (s *Server) untrack(c *net.TCPConn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.active.Add(-1)
}
