package ring

import (
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sockaddr is a raw sockaddr_in or sockaddr_in6 for a connect request. It
// lives in memory that outlives the request (a session slot), because the
// kernel may read it after the submitting call has returned.
type Sockaddr struct {
	raw unix.RawSockaddrInet6 // large enough for both families
	len uint32
}

// Set fills s from ap.
func (s *Sockaddr) Set(ap netip.AddrPort) {
	s.raw = unix.RawSockaddrInet6{}
	port := ap.Port()
	if ap.Addr().Unmap().Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.raw))
		sa.Family = unix.AF_INET
		setPort(&sa.Port, port)
		sa.Addr = ap.Addr().Unmap().As4()
		s.len = unix.SizeofSockaddrInet4
		return
	}
	s.raw.Family = unix.AF_INET6
	setPort(&s.raw.Port, port)
	s.raw.Addr = ap.Addr().As16()
	s.len = unix.SizeofSockaddrInet6
}

// Family is AF_INET or AF_INET6.
func (s *Sockaddr) Family() int { return int(s.raw.Family) }

func (s *Sockaddr) ptr() uintptr { return uintptr(unsafe.Pointer(&s.raw)) }

func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// Listen opens a non-blocking SO_REUSEPORT listening socket: every worker
// binds its own, and the kernel spreads new connections among them.
func Listen(ap netip.AddrPort, backlog int) (int, error) {
	fd, err := unix.Socket(family(ap.Addr()), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("listen %s: socket: %w", ap, err)
	}
	if err := listenOpts(fd, ap); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", ap, err)
	}
	var sa Sockaddr
	sa.Set(ap)
	if _, _, e := unix.Syscall(unix.SYS_BIND, uintptr(fd), sa.ptr(), uintptr(sa.len)); e != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: bind: %w", ap, e)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", ap, err)
	}
	return fd, nil
}

func listenOpts(fd int, ap netip.AddrPort) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", err)
	}
	if family(ap.Addr()) == unix.AF_INET6 {
		// "[::]:80" next to "0.0.0.0:80" must not claim IPv4 too.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fmt.Errorf("IPV6_V6ONLY: %w", err)
		}
	}
	return nil
}

// LocalAddr is the address fd is bound to.
func LocalAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return sockaddrToAddrPort(sa), nil
}

// PeerAddr is the address of fd's peer, read without allocating.
func PeerAddr(fd int) (netip.AddrPort, error) {
	var raw unix.RawSockaddrInet6
	n := uint32(unsafe.Sizeof(raw))
	_, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&raw)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return netip.AddrPort{}, e
	}
	switch raw.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&raw))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), getPort(&sa.Port)), nil
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(raw.Addr), getPort(&raw.Port)), nil
	}
	return netip.AddrPort{}, unix.EAFNOSUPPORT
}

func sockaddrToAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// StreamSocket opens a non-blocking TCP socket for a connect to sa.
func StreamSocket(sa *Sockaddr) (int, error) {
	return unix.Socket(sa.Family(), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}

// SockOpts are the per-connection options a frontend or backend sets.
type SockOpts struct {
	NoDelay   bool
	KeepAlive bool
	NoLinger  bool // SO_LINGER 0: close sends RST, no TIME_WAIT
}

// Apply sets o on fd.
func (o SockOpts) Apply(fd int) error {
	if o.NoDelay {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return fmt.Errorf("TCP_NODELAY: %w", err)
		}
	}
	if o.KeepAlive {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
			return fmt.Errorf("SO_KEEPALIVE: %w", err)
		}
	}
	if o.NoLinger {
		if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
			return fmt.Errorf("SO_LINGER: %w", err)
		}
	}
	return nil
}

// ApplyListener sets o on a listening socket, each option on or off, so
// that the sockets it accepts inherit them (see InheritsSockOpts). Off is
// set too: a reload may turn an option off on a socket it takes over.
func (o SockOpts) ApplyListener(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(o.NoDelay)); err != nil {
		return fmt.Errorf("TCP_NODELAY: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolInt(o.KeepAlive)); err != nil {
		return fmt.Errorf("SO_KEEPALIVE: %w", err)
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: int32(boolInt(o.NoLinger))}); err != nil {
		return fmt.Errorf("SO_LINGER: %w", err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// InheritsSockOpts says whether a socket accepted from a listener starts
// with the listener's TCP_NODELAY, SO_KEEPALIVE and SO_LINGER, as Linux's
// do: then they are set once per listener, not once per connection. It
// is checked once, on a loopback connection to itself.
func InheritsSockOpts() bool {
	inheritOnce.Do(func() { inherits = probeInheritance() })
	return inherits
}

var (
	inheritOnce sync.Once
	inherits    bool
)

func probeInheritance() bool {
	want := SockOpts{NoDelay: true, KeepAlive: true, NoLinger: true}
	ap := netip.MustParseAddrPort("127.0.0.1:0")
	ln, err := Listen(ap, 1)
	if err != nil {
		return false
	}
	defer unix.Close(ln)
	if want.ApplyListener(ln) != nil {
		return false
	}
	if ap, err = LocalAddr(ln); err != nil {
		return false
	}
	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(c)
	if unix.Connect(c, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}) != nil {
		return false
	}
	var a int
	for range 100 { // the handshake is done; the accept queue may lag a moment
		if a, err = AcceptNow(ln); err != unix.EAGAIN {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		return false
	}
	defer unix.Close(a)
	nd, err1 := unix.GetsockoptInt(a, unix.IPPROTO_TCP, unix.TCP_NODELAY)
	ka, err2 := unix.GetsockoptInt(a, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
	l, err3 := unix.GetsockoptLinger(a, unix.SOL_SOCKET, unix.SO_LINGER)
	return err1 == nil && err2 == nil && err3 == nil && nd != 0 && ka != 0 && l.Onoff != 0 && l.Linger == 0
}

// RaiseNoFile lifts the soft fd limit to the hard one, as HAProxy does,
// and returns it as the fd ceiling; 0 when it cannot be read or is
// practically unlimited.
func RaiseNoFile() int {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	}
	if rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}

// DupListener gives a listening socket a second fd (close-on-exec) for
// a generation that takes it over: the socket lives until both are closed.
func DupListener(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}

// BindProbe is how TryBind binds: as a frontend listener (SO_REUSEPORT
// when ReusePort, IPv6 sockets IPV6_V6ONLY) or, with DualStack, as Go's
// net.Listen does for the stats listener (no SO_REUSEPORT, a wildcard of
// either family bound as a dual-stack "[::]").
type BindProbe struct {
	ReusePort bool
	DualStack bool
}

// TryBind binds a fresh socket to ap as how says and closes it without
// listening: whether a listener could bind there now. The error is the
// bare errno when bind fails, which is what an operator reads.
func TryBind(ap netip.AddrPort, how BindProbe) error {
	a := ap.Addr().Unmap()
	fam := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	switch {
	case how.DualStack && a.IsUnspecified():
		sa = &unix.SockaddrInet6{Port: int(ap.Port())}
	case a.Is4():
		fam, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if how.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fmt.Errorf("SO_REUSEPORT: %w", err)
		}
	}
	if fam == unix.AF_INET6 {
		v6only := 1
		if how.DualStack {
			v6only = 0
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return fmt.Errorf("IPV6_V6ONLY: %w", err)
		}
	}
	return unix.Bind(fd, sa)
}

// StopListening makes listening socket fd refuse connections while it
// stays bound (HAProxy's pause: shutdown(SHUT_RD) unhashes a listener on
// Linux, and resets the clients in its accept queue). Relisten undoes it.
func StopListening(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) }

// Relisten makes fd listen again after StopListening; on a socket that
// listens it only sets the backlog.
func Relisten(fd, backlog int) error { return unix.Listen(fd, backlog) }

// CloseNow closes fd synchronously, for fds no request refers to.
func CloseNow(fd int) { unix.Close(fd) }

// lingerReset makes a close send a RST; it lives here, not on the stack,
// so that setting it allocates nothing.
var lingerReset = unix.Linger{Onoff: 1, Linger: 0}

// resetOnClose makes fd's close abort the connection. It cannot fail on a
// TCP socket that is still open; a socket the peer already reset has
// nothing left to drop.
func resetOnClose(fd int) {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &lingerReset)
}

// SpliceNow moves up to n bytes from fd in to fd out, one of them a
// pipe, without blocking and without copying: pages move by reference.
func SpliceNow(in, out, n int) (int, error) {
	m, err := unix.Splice(in, nil, out, nil, n, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
	return int(m), err
}

// NewPipe makes a non-blocking pipe of up to size bytes, for splicing
// one direction of a session, and says how much it holds: the kernel
// gives less past pipe-max-size or a user's pipe-user-pages-soft.
func NewPipe(size int) (r, w, capacity int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return -1, -1, 0, fmt.Errorf("pipe: %w", err)
	}
	capacity, err = unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size)
	if err != nil {
		if capacity, err = unix.FcntlInt(uintptr(p[1]), unix.F_GETPIPE_SZ, 0); err != nil {
			capacity = 64 << 10
		}
	}
	return p[0], p[1], capacity, nil
}

// pollMask is what a poll for input or output waits for.
func pollMask(out bool) uint32 {
	if out {
		return unix.POLLOUT | unix.POLLERR | unix.POLLHUP
	}
	return unix.POLLIN | unix.POLLRDHUP | unix.POLLERR | unix.POLLHUP
}

// AcceptNow accepts one client waiting on listening socket fd (which
// Listen made non-blocking), with the flags the engines' accepts use. It
// returns EAGAIN when none waits.
func AcceptNow(fd int) (int, error) {
	nfd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(nfd), nil
}

// Errno turns a negative completion result into an error.
func Errno(res int32) error {
	if res >= 0 {
		return nil
	}
	return syscall.Errno(-res)
}

// setPort and getPort read and write a port in network byte order,
// whatever the host's order.
func setPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}
