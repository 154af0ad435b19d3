package health

import (
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitFor polls cond until it holds or within passes.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func addrOf(t *testing.T, ln net.Listener) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// testServer is a loopback listener that hands each connection to handle in
// its own goroutine; Close (also run at cleanup) ends all of them.
type testServer struct {
	ln    net.Listener
	addr  netip.AddrPort
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
	once  sync.Once
}

func serve(t *testing.T, handle func(net.Conn)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, handle)
}

func serveOn(t *testing.T, ln net.Listener, handle func(net.Conn)) *testServer {
	s := &testServer{ln: ln, addr: addrOf(t, ln)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				handle(c)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) Close() {
	s.once.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// hangUp closes at once: enough for a tcp check.
func hangUp(c net.Conn) { c.Close() }

// silent accepts and never answers, until the connection is closed.
func silent(c net.Conn) {
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}

// blackhole returns a loopback address whose SYNs are dropped: a listener
// with listen(fd, 0) whose accept queue is filled and never drained, so a
// connect to it neither succeeds nor is refused.
func blackhole(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	for range 8 {
		c, err := net.DialTimeout("tcp", addr.String(), 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full: SYNs are dropped from here on
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("blackhole %v: connects still succeed after 8", addr)
	return addr
}

// recorder collects events.
type recorder struct{ ch chan Event }

func newRecorder() *recorder { return &recorder{ch: make(chan Event, 256)} }

func (r *recorder) on(ev Event) { r.ch <- ev }

// next waits up to within for an event and says how long it took.
func (r *recorder) next(t *testing.T, within time.Duration) (Event, time.Duration) {
	t.Helper()
	t0 := time.Now()
	select {
	case ev := <-r.ch:
		return ev, time.Since(t0)
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
		return Event{}, 0
	}
}

// none fails if an event is pending.
func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case ev := <-r.ch:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

func start(t *testing.T, spec Spec, targets ...Target) (*Monitor, *recorder) {
	t.Helper()
	rec := newRecorder()
	m, err := Start(spec, targets, rec.on)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m, rec
}
