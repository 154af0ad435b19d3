package ring

import (
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/mempool"
)

// newTestUring makes an engine on the test's (locked) thread. Its
// receives complete once, as the tests written for every engine expect;
// TestUringMultishotRecv covers the multishot ones.
func newTestUring(t *testing.T, bufs int) *Uring {
	u := newTestMultishotUring(t, bufs)
	u.multiRecv = false
	return u
}

// newTestMultishotUring is newTestUring with the receives the kernel
// offers.
func newTestMultishotUring(t *testing.T, bufs int) *Uring {
	t.Helper()
	return newBusyPollUring(t, bufs, 0)
}

// newBusyPollUring is newTestMultishotUring with busy polling up to limit.
func newBusyPollUring(t *testing.T, bufs int, limit time.Duration) *Uring {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	a, err := mempool.NewArena(bufs, 4096)
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUring(UringConfig{Entries: 64, Arena: a, BusyPoll: limit})
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Release(); a.Close() })
	return u
}

// newTestEngine makes engine name with bufs 4 KiB buffers.
func newTestEngine(t *testing.T, name string, bufs int) Engine {
	t.Helper()
	if name == "uring" {
		return newTestUring(t, bufs)
	}
	a, err := mempool.NewArena(bufs, 4096)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(name, a, Options{})
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Release(); a.Close() })
	return e
}

// forEngines runs f as a subtest per engine.
func forEngines(t *testing.T, f func(t *testing.T, name string)) {
	for _, name := range Engines {
		t.Run(name, func(t *testing.T) { f(t, name) })
	}
}

// waitFor waits until a completion tagged ud arrives, failing after 2 s.
func waitFor(t *testing.T, u Engine, ud UserData) Completion {
	t.Helper()
	var out [16]Completion
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		n, err := u.Wait(100*time.Millisecond, out[:])
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		for _, c := range out[:n] {
			if c.UD == ud {
				return c
			}
		}
	}
	t.Fatalf("no completion for %v", ud)
	return Completion{}
}

func TestEngineAcceptRecvSendShutdown(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		u := newTestEngine(t, eng, 4)
		lfd, err := Listen(mustAddrPort("127.0.0.1:0"), 16)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(lfd)
		addr, _ := LocalAddr(lfd)
		u.Accept(lfd, Pack(OpAccept, 0, 0))

		client, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()

		acc := waitFor(t, u, Pack(OpAccept, 0, 0))
		if acc.Res < 0 || !acc.More() {
			t.Fatalf("accept: res %d more %v", acc.Res, acc.More())
		}
		fd := int(acc.Res)
		defer unix.Close(fd)

		recvTag := Pack(OpRecv, 3, 7)
		u.Recv(fd, recvTag)
		client.Write([]byte("hello ring"))
		rc := waitFor(t, u, recvTag)
		id, ok := rc.Buffer()
		if rc.Res != 10 || !ok || string(u.Buffer(id)[:10]) != "hello ring" {
			t.Fatalf("recv: res %d buffer %v %q", rc.Res, ok, u.Buffer(id)[:max(rc.Res, 0)])
		}

		// The consumer sends from the very memory the receive filled.
		u.Send(fd, id, 6, 4, Pack(OpSend, 3, 7))
		if sc := waitFor(t, u, Pack(OpSend, 3, 7)); sc.Res != 4 {
			t.Fatalf("send: res %d", sc.Res)
		}
		u.ReleaseBuffer(id)
		u.Shutdown(fd, Pack(OpShutdown, 3, 7))
		if c := waitFor(t, u, Pack(OpShutdown, 3, 7)); c.Res != 0 {
			t.Fatalf("shutdown: %v", Errno(c.Res))
		}
		client.SetReadDeadline(time.Now().Add(2 * time.Second))
		got, err := io.ReadAll(client)
		if err != nil || string(got) != "ring" {
			t.Fatalf("client read %q, %v; want \"ring\" then EOF", got, err)
		}
	})
}

func TestEngineConnectAndRefused(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		u := newTestEngine(t, eng, 4)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var sa Sockaddr
		sa.Set(mustAddrPort(ln.Addr().String()))
		fd, err := StreamSocket(&sa)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		u.Connect(fd, &sa, Pack(OpConnect, 1, 1))
		if c := waitFor(t, u, Pack(OpConnect, 1, 1)); c.Res != 0 {
			t.Fatalf("connect: %v", Errno(c.Res))
		}
		ln.Close()

		// Nothing listens there any more: the connect completes ECONNREFUSED.
		fd2, _ := StreamSocket(&sa)
		defer unix.Close(fd2)
		u.Connect(fd2, &sa, Pack(OpConnect, 2, 1))
		if c := waitFor(t, u, Pack(OpConnect, 2, 1)); c.Res != -int32(unix.ECONNREFUSED) {
			t.Fatalf("connect to a closed port: res %d (%v), want ECONNREFUSED", c.Res, Errno(c.Res))
		}
	})
}

func TestEngineCancelAndBufferExhaustion(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		u := newTestEngine(t, eng, 1)
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])

		unix.Write(fds[1], []byte("x"))
		u.Recv(fds[0], Pack(OpRecv, 1, 1))
		first := waitFor(t, u, Pack(OpRecv, 1, 1))
		id, ok := first.Buffer()
		if first.Res != 1 || !ok {
			t.Fatalf("first recv: res %d", first.Res)
		}
		// The only buffer is held: the next receive with data waiting fails
		// ENOBUFS instead of blocking or overwriting.
		unix.Write(fds[1], []byte("y"))
		u.Recv(fds[0], Pack(OpRecv, 1, 2))
		if c := waitFor(t, u, Pack(OpRecv, 1, 2)); c.Res != -int32(unix.ENOBUFS) {
			t.Fatalf("recv with an empty pool: res %d (%v), want ENOBUFS", c.Res, Errno(c.Res))
		}
		u.ReleaseBuffer(id)
		u.Recv(fds[0], Pack(OpRecv, 1, 3))
		if c := waitFor(t, u, Pack(OpRecv, 1, 3)); c.Res != 1 {
			t.Fatalf("recv after release: res %d (%v)", c.Res, Errno(c.Res))
		}
		u.ReleaseBuffer(id)

		// A pending receive is cancelled by fd.
		u.Recv(fds[0], Pack(OpRecv, 1, 4))
		u.CancelFd(fds[0], Pack(OpCancel, 1, 4))
		if c := waitFor(t, u, Pack(OpRecv, 1, 4)); c.Res != -int32(unix.ECANCELED) {
			t.Fatalf("cancelled recv: res %d (%v)", c.Res, Errno(c.Res))
		}
	})
}

// GIOURING.md #2: an SQE slot last used by a send with MSG_NOSIGNAL made a
// later close fail with EINVAL when the slot was not zeroed. Cycle every
// slot through a send, then close fds through the same slots.
func TestUringReusedSlotsCloseCleanly(t *testing.T) {
	u := newTestUring(t, 4)
	var fds [][2]int
	for i := 0; i < 80; i++ { // more than the 64 SQ entries
		p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, [2]int{p[0], p[1]})
		u.Send(p[0], 0, 0, 8, Pack(OpSend, uint32(i), 0))
		waitFor(t, u, Pack(OpSend, uint32(i), 0))
	}
	for _, p := range fds {
		u.Close(p[0])
	}
	var out [16]Completion
	u.Wait(0, out[:])
	time.Sleep(20 * time.Millisecond)
	u.Wait(0, out[:])
	for _, p := range fds {
		if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETFD, 0); err != unix.EBADF {
			t.Fatalf("fd %d still open after Close: %v", p[0], err)
		}
		unix.Close(p[1])
	}
}

func TestEngineWakeAndTimeout(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		u := newTestEngine(t, eng, 4)
		var out [4]Completion
		start := time.Now()
		n, err := u.Wait(50*time.Millisecond, out[:])
		if err != nil || n != 0 {
			t.Fatalf("idle wait: n %d err %v", n, err)
		}
		if d := time.Since(start); d < 40*time.Millisecond || d > time.Second {
			t.Fatalf("50ms wait took %v", d)
		}
		go func() { time.Sleep(30 * time.Millisecond); u.Wake() }()
		start = time.Now()
		c := waitFor(t, u, Pack(OpWake, 0, 0))
		if d := time.Since(start); d > time.Second || c.Res != 8 {
			t.Fatalf("wake: res %d after %v", c.Res, d)
		}
	})
}

func TestSockaddrRoundTrip(t *testing.T) {
	for _, s := range []string{"127.0.0.1:8080", "[::1]:443", "10.1.2.3:1"} {
		var sa Sockaddr
		ap := mustAddrPort(s)
		sa.Set(ap)
		if (sa.Family() == unix.AF_INET) != ap.Addr().Is4() {
			t.Fatalf("%s: family %d", s, sa.Family())
		}
		if got := getPort(&sa.raw.Port); got != ap.Port() {
			t.Fatalf("%s: port %d", s, got)
		}
	}
}

// GIOURING.md #12: a SINGLE_ISSUER ring refuses submissions from any
// thread but its creator's, which is why each loop builds its engine on
// its own locked thread and no other goroutine submits.
func TestUringSingleIssuerRefusesOtherThreads(t *testing.T) {
	if !Probe().SingleIssuer {
		t.Skip("kernel without IORING_SETUP_SINGLE_ISSUER")
	}
	u := newTestUring(t, 4)
	u.Recv(-1, Pack(OpRecv, 1, 1)) // anything to submit
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var out [4]Completion
		_, err := u.Wait(0, out[:])
		errc <- err
	}()
	// EEXIST from the single issuer check; when the ring is entered by
	// its index in the creating thread's registered rings, EINVAL (the
	// other thread has none) or EBADF (not at that index) first.
	want := []string{"file exists"}
	if u.regRing {
		want = []string{"invalid argument", "bad file descriptor"}
	}
	err := <-errc
	if err == nil || !strings.Contains(err.Error(), want[0]) && !strings.Contains(err.Error(), want[len(want)-1]) {
		t.Fatalf("submit from another thread: %v, want %q", err, want)
	}
	// The creating thread still can.
	if c := waitFor(t, u, Pack(OpRecv, 1, 1)); c.Res != -int32(unix.EBADF) {
		t.Fatalf("recv on fd -1: res %d, want EBADF", c.Res)
	}
}

// One forwarded buffer through an engine (receive, wait, send from the
// same buffer, wait, release) allocates nothing; nor does it with busy
// polling, its trial moving on at every wait.
func TestEngineForwardingAllocatesNothing(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		forwardingAllocs(t, newTestEngine(t, eng, 4), func() {})
	})
	t.Run("uring busy polling", func(t *testing.T) {
		u := newBusyPollUring(t, 4, time.Millisecond)
		forwardingAllocs(t, u, func() { u.poll.trial.until = 0 })
	})
}

func forwardingAllocs(t *testing.T, u Engine, each func()) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	out := make([]Completion, 16)
	msg := []byte("0123456789abcdef")
	sink := make([]byte, 64)
	await := func(ud UserData) Completion {
		for {
			each()
			n, _ := u.Wait(time.Second, out)
			for _, c := range out[:n] {
				if c.UD == ud {
					return c
				}
			}
		}
	}
	cycle := func() {
		unix.Write(fds[1], msg)
		u.Recv(fds[0], Pack(OpRecv, 1, 1))
		rc := await(Pack(OpRecv, 1, 1))
		id, _ := rc.Buffer()
		u.Send(fds[0], id, 0, int(rc.Res), Pack(OpSend, 1, 1))
		await(Pack(OpSend, 1, 1))
		u.ReleaseBuffer(id)
		unix.Read(fds[1], sink)
	}
	cycle()
	if allocs := testing.AllocsPerRun(200, cycle); allocs != 0 {
		t.Fatalf("%s engine allocates %.2f times per forwarded buffer", u.Name(), allocs)
	}
}

// A multishot receive stays armed across completions, one buffer each, in
// order; it ends, without More, on an empty pool (-ENOBUFS), a cancel of
// its tag (-ECANCELED) and the peer's FIN (0).
func TestUringMultishotRecv(t *testing.T) {
	if !Probe().MultishotRecv {
		t.Skip("kernel without multishot receive")
	}
	u := newTestMultishotUring(t, 3)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	tag := Pack(OpRecv, 1, 1)
	recvOne := func(msg string, more bool) uint16 {
		t.Helper()
		if _, err := unix.Write(fds[1], []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c := waitFor(t, u, tag)
		id, ok := c.Buffer()
		if c.Res != int32(len(msg)) || !ok || string(u.Buffer(id)[:len(msg)]) != msg || c.More() != more {
			t.Fatalf("recv %q: res %d, buffer %v, more %v; want more %v", msg, c.Res, ok, c.More(), more)
		}
		return id
	}

	u.Recv(fds[0], tag)
	a, b, c := recvOne("one", true), recvOne("two", true), recvOne("three", true)
	if a == b || b == c || a == c {
		t.Fatalf("buffers %d %d %d: each completion must have its own", a, b, c)
	}
	unix.Write(fds[1], []byte("four"))
	if e := waitFor(t, u, tag); e.Res != -int32(unix.ENOBUFS) || e.More() {
		t.Fatalf("recv with an empty pool: res %d (%v), more %v; want ENOBUFS, ended", e.Res, Errno(e.Res), e.More())
	}
	for _, id := range []uint16{a, b, c} {
		u.ReleaseBuffer(id)
	}
	// Re-armed, it takes what waited, then a cancel of its tag ends it.
	u.Recv(fds[0], tag)
	d := waitFor(t, u, tag)
	id, _ := d.Buffer()
	if d.Res != 4 || string(u.Buffer(id)[:4]) != "four" || !d.More() {
		t.Fatalf("recv after release: res %d, more %v", d.Res, d.More())
	}
	u.ReleaseBuffer(id)
	u.CancelRequest(tag, Pack(OpCancel, 1, 1))
	if e := waitFor(t, u, tag); e.Res != -int32(unix.ECANCELED) || e.More() {
		t.Fatalf("cancelled multishot recv: res %d (%v), more %v", e.Res, Errno(e.Res), e.More())
	}
	// The FIN ends it too.
	u.Recv(fds[0], tag)
	unix.Shutdown(fds[1], unix.SHUT_WR)
	if e := waitFor(t, u, tag); e.Res != 0 || e.More() {
		t.Fatalf("recv at FIN: res %d (%v), more %v; want 0, ended", e.Res, Errno(e.Res), e.More())
	}
}

// AcceptOne takes one client of several waiting: a single completion, no
// More, and the others stay in the backlog for the next accept.
func TestEngineAcceptOne(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		u := newTestEngine(t, eng, 4)
		lfd, err := Listen(mustAddrPort("127.0.0.1:0"), 16)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(lfd)
		addr, _ := LocalAddr(lfd)
		for i := 0; i < 3; i++ {
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		tag := Pack(OpAccept, 1, 0)
		u.AcceptOne(lfd, tag)
		acc := waitFor(t, u, tag)
		if acc.Res < 0 || acc.More() {
			t.Fatalf("accept one: res %d more %v; want an fd and no More", acc.Res, acc.More())
		}
		unix.Close(int(acc.Res))
		var out [16]Completion
		n, err := u.Wait(100*time.Millisecond, out[:])
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range out[:n] {
			if c.UD == tag {
				t.Fatalf("a second completion after AcceptOne: res %d", c.Res)
			}
		}
		for i := 0; i < 2; i++ { // the other two are still waiting
			fd, err := AcceptNow(lfd)
			if err != nil {
				t.Fatalf("client %d left in the backlog: %v", i+2, err)
			}
			unix.Close(fd)
		}
	})
}

// TestUringRegisteredRingFreedOnRelease: each engine enters its ring
// through a registered-ring index, and Release gives the thread's slot
// back: the kernel has 16 per thread, so without the unregister the 17th
// engine on this thread would fall back to the plain fd.
func TestUringRegisteredRingFreedOnRelease(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := range 20 {
		a, err := mempool.NewArena(4, 4096)
		if err != nil {
			t.Fatal(err)
		}
		u, err := NewUring(UringConfig{Entries: 64, Arena: a})
		if err != nil {
			a.Close()
			t.Fatal(err)
		}
		if !u.regRing || u.enterFd == u.ring.RingFd() {
			t.Fatalf("engine %d: ring not registered (enter fd %d, ring fd %d)", i, u.enterFd, u.ring.RingFd())
		}
		var out [4]Completion
		// A signal (the runtime's preemption) may end a wait early
		// (EINTR), as the loop allows: one of a few must sleep.
		var waited []time.Duration
		for len(waited) < 5 {
			start := time.Now()
			if n, err := u.Wait(20*time.Millisecond, out[:]); err != nil || n != 0 {
				t.Fatalf("engine %d: idle wait through the registered ring: n %d err %v", i, n, err)
			}
			if waited = append(waited, time.Since(start)); waited[len(waited)-1] >= 10*time.Millisecond {
				break
			}
		}
		if d := waited[len(waited)-1]; d < 10*time.Millisecond {
			t.Fatalf("engine %d: 20ms waits returned after %v", i, waited)
		}
		u.Wake()
		if c := waitFor(t, u, Pack(OpWake, 0, 0)); c.Res != 8 {
			t.Fatalf("engine %d: wake res %d", i, c.Res)
		}
		u.Release()
		a.Close()
	}
}
