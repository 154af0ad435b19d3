package session_test

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/ring"
	"ringproxy/session/testbed"
)

// acceptedFd finds, among this process's fds, the proxy's socket for
// client conn c (the proxy runs in-process).
func acceptedFd(t *testing.T, c net.Conn) int {
	t.Helper()
	want := netip.MustParseAddrPort(c.LocalAddr().String())
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if peer, err := ring.PeerAddr(fd); err == nil && peer == want {
			return fd
		}
	}
	t.Fatalf("no socket of this process has peer %v", want)
	return -1
}

// Each frontend's tcp_nodelay, keepalive and nolinger reach the client
// sockets it accepts, whether set on the listener (inherited) or on each
// socket, and a reload that turns them off turns them off.
func TestFrontendSockOptsReachClients(t *testing.T) {
	t.Logf("accepted sockets inherit the listener's options: %v", ring.InheritsSockOpts())
	echo := testbed.StartEcho(t)
	check := func(addr netip.AddrPort, on bool) {
		t.Helper()
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write([]byte("x"))
		c.Read(make([]byte, 1)) // the session is up
		fd := acceptedFd(t, c)
		nd, _ := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		ka, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		l, _ := unix.GetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER)
		if (nd != 0) != on || (ka != 0) != on || (l.Onoff != 0) != on || l.Linger != 0 {
			t.Errorf("options on: %v; client socket has nodelay %d, keepalive %d, linger %d/%d", on, nd, ka, l.Onoff, l.Linger)
		}
	}
	cfg := testConfig("uring", echo.Addr())
	fe := cfg.Frontends[0]
	fe.TCPNoDelay, fe.KeepAlive, fe.NoLinger = true, true, true
	old, addr := startProxy(t, cfg)
	check(addr, true)

	cfg = testConfig("epoll", echo.Addr())
	cfg.Frontends[0].Binds = []netip.AddrPort{addr}
	cfg.Frontends[0].TCPNoDelay = false
	reloadTo(t, old, cfg)
	testbed.WaitFor(t, 2*time.Second, func() bool {
		select {
		case <-old.Done():
			return true
		default:
			return false
		}
	}, "the old generation to stop")
	check(addr, false)
}
