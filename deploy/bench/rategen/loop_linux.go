package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The schedule runs in one thread on one epoll set, the way wrk does:
// with a goroutine per connection, each parked in a timer and in the
// netpoller, rategen could not offer three quarters of a proxy's peak
// (issue #15).

// client is one keep-alive connection of the schedule.
type client struct {
	fd   int // -1 between an error and the reconnect at its next due request
	busy bool
	sent time.Duration // since the loop's t0: when the outstanding request was written
	owed int           // due requests not yet sent: one was still in flight
	resp respParser
}

// loop is the schedule: request j is due at lead + j/rate, on connection
// j mod conns; a connection behind its schedule sends as soon as its
// answer comes, until it has caught up.
type loop struct {
	sa    unix.Sockaddr
	req   []byte
	rate  float64
	dur   time.Duration
	slack time.Duration // a request due this soon after a wake is sent in it
	cs    []*client
	byFd  map[int]*client
	ep    int
	tfd   int // timerfd, armed at the next due request
	armed time.Duration
	t0    time.Time     // the loop's clock: time.Since(t0)
	mono0 time.Duration // CLOCK_MONOTONIC at t0, for the timerfd's absolute times
	next  int64         // the next request of the schedule
	lat   []int64       // µs, every answered request
	errs  int64
	last  error
	buf   []byte
}

// The loop's three syscalls bypass the Go scheduler. Through it, a wait
// in epoll_wait is a P in a syscall, which sysmon takes back and hands
// to another thread and the loop takes back on return: futex and
// nanosleep calls on the load CPU, and 37,000 req/s held of 50,000
// offered direct to nginx, against all of it raw. A raw wait never
// lasts past the next due request, or maxWait, so the scheduler (a GC's
// stop, sysmon's preemption signal, which ends the wait with EINTR) is
// never held up for long.
func epollWait(ep int, events []unix.EpollEvent, msec int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func rawRead(fd int, b []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// lead: connections are open before the schedule starts.
const lead = 20 * time.Millisecond

// drainTimeout: how long the requests in flight at the end may take.
const drainTimeout = 10 * time.Second

// maxWait bounds every wait, in ms: the timerfd ends a wait at the next
// due request, and this ends it should the timer ever fail to arm.
const maxWait = 10

func newLoop(addr string, req []byte, rate float64, conns int, dur, slack time.Duration) (*loop, error) {
	sa, err := sockaddr(addr)
	if err != nil {
		return nil, err
	}
	l := &loop{sa: sa, req: req, rate: rate, dur: dur, slack: slack, byFd: map[int]*client{}, ep: -1, tfd: -1,
		lat: make([]int64, 0, int(rate*dur.Seconds())+conns), buf: make([]byte, 64<<10)}
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if l.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		l.close()
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	// Edge-triggered: each expiry is one event, and arming the timer
	// again resets its count, so it is never read.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(l.tfd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, l.tfd, &ev); err != nil {
		l.close()
		return nil, fmt.Errorf("epoll_ctl timerfd: %w", err)
	}
	for range conns {
		c := &client{fd: -1}
		if err := l.dial(c); err != nil {
			l.close()
			return nil, err
		}
		l.cs = append(l.cs, c)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		l.close()
		return nil, fmt.Errorf("clock_gettime: %w", err)
	}
	l.t0, l.mono0 = time.Now(), time.Duration(ts.Nano())
	return l, nil
}

func sockaddr(addr string) (unix.Sockaddr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("bad port in %q", addr)
	}
	ip := net.ParseIP(host)
	if ip4 := ip.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: p}
		copy(sa.Addr[:], ip4)
		return sa, nil
	}
	if ip != nil {
		sa := &unix.SockaddrInet6{Port: p}
		copy(sa.Addr[:], ip)
		return sa, nil
	}
	return nil, fmt.Errorf("%q is not an IP address", host)
}

// dial connects c, blocking (it is rare: at the start and after an
// error), then makes it non-blocking and watches it.
func (l *loop) dial(c *client) error {
	family := unix.AF_INET
	if _, ok := l.sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	tv := unix.Timeval{Sec: 5}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv) // bounds connect
	for {
		err = unix.Connect(fd, l.sa)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err == nil {
		err = l.watch(fd)
	}
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("connect: %w", err)
	}
	c.fd, c.busy, c.owed = fd, false, 0
	c.resp.reset()
	l.byFd[fd] = c
	return nil
}

func (l *loop) watch(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

func (l *loop) due(j int64) time.Duration {
	return lead + time.Duration(float64(j)/l.rate*float64(time.Second))
}

// run keeps the schedule until its end, then waits for the answers in
// flight. It returns the time from the schedule's start to the last
// answer.
func (l *loop) run() time.Duration {
	end := lead + l.dur
	events := make([]unix.EpollEvent, len(l.cs)+1)
	for {
		now := time.Since(l.t0)
		if now >= end {
			break
		}
		l.sendDue(now, end)
		l.arm(min(l.due(l.next), end))
		l.wait(events, maxWait)
	}
	// Requests still owed at the end are not sent: the rate achieved says
	// the target fell behind.
	deadline := time.Since(l.t0) + drainTimeout
	for l.inFlight() > 0 {
		left := deadline - time.Since(l.t0)
		if left <= 0 {
			break
		}
		l.wait(events, min(maxWait, int(left/time.Millisecond)+1))
	}
	elapsed := time.Since(l.t0) - lead
	if n := l.inFlight(); n > 0 {
		l.errs += int64(n)
		l.last = fmt.Errorf("%d answers had not come %s after the end", n, drainTimeout)
	}
	return elapsed
}

// sendDue sends every request due by now (or within the slack), or owes
// it to a connection still waiting for its previous answer.
func (l *loop) sendDue(now, end time.Duration) {
	for {
		d := l.due(l.next)
		if d > now+l.slack || d >= end {
			return
		}
		c := l.cs[l.next%int64(len(l.cs))]
		l.next++
		switch {
		case c.fd < 0:
			if err := l.dial(c); err != nil {
				l.fail(c, err)
				continue
			}
			l.send(c)
		case c.busy:
			c.owed++
		default:
			l.send(c)
		}
	}
}

func (l *loop) send(c *client) {
	c.sent = time.Since(l.t0)
	n, err := rawWrite(c.fd, l.req)
	switch {
	case err != nil:
		l.fail(c, fmt.Errorf("write: %w", err))
	case n < len(l.req):
		l.fail(c, fmt.Errorf("write: %d of %d bytes taken", n, len(l.req)))
	default:
		c.busy = true
	}
}

// arm sets the timerfd to fire at t (since t0), unless it already does.
func (l *loop) arm(t time.Duration) {
	if t == l.armed {
		return
	}
	l.armed = t
	abs := unix.NsecToTimespec(int64(l.mono0 + t))
	spec := unix.ItimerSpec{Value: abs}
	if err := unix.TimerfdSettime(l.tfd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		l.last = fmt.Errorf("timerfd_settime: %w", err)
		l.errs++
	}
}

// wait takes one epoll_wait's events: answers, and the timer.
func (l *loop) wait(events []unix.EpollEvent, msec int) {
	n, err := epollWait(l.ep, events, msec)
	if err != nil {
		if !errors.Is(err, unix.EINTR) {
			l.last = fmt.Errorf("epoll_wait: %w", err)
			l.errs++
			time.Sleep(time.Millisecond)
		}
		return
	}
	for _, ev := range events[:n] {
		fd := int(ev.Fd)
		if fd == l.tfd {
			continue
		}
		if c := l.byFd[fd]; c != nil {
			l.readable(c)
		}
	}
}

// readable reads what c's socket holds and, once an answer is whole,
// records its latency and sends what c owes.
func (l *loop) readable(c *client) {
	n, err := rawRead(c.fd, l.buf)
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return
	case err != nil:
		l.fail(c, fmt.Errorf("read: %w", err))
		return
	case n == 0:
		l.fail(c, errors.New("server closed the connection"))
		return
	case !c.busy:
		l.fail(c, errExtra)
		return
	}
	done, err := c.resp.feed(l.buf[:n])
	if err != nil {
		l.fail(c, err)
		return
	}
	if !done {
		return
	}
	l.lat = append(l.lat, int64((time.Since(l.t0)-c.sent)/time.Microsecond))
	c.busy = false
	c.resp.reset()
	if c.owed > 0 && time.Since(l.t0) < lead+l.dur {
		c.owed--
		l.send(c)
	}
}

// fail counts an error and closes c; its next due request reconnects.
func (l *loop) fail(c *client, err error) {
	l.errs++
	l.last = err
	if c.fd >= 0 {
		delete(l.byFd, c.fd)
		unix.Close(c.fd)
	}
	c.fd, c.busy, c.owed = -1, false, 0
}

func (l *loop) inFlight() int {
	n := 0
	for _, c := range l.cs {
		if c.busy {
			n++
		}
	}
	return n
}

func (l *loop) close() {
	for _, c := range l.cs {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
	}
	for _, fd := range []int{l.tfd, l.ep} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
