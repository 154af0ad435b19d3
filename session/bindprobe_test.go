package session_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// fixedConfig is testConfig on addr, a port fixed in advance, so that a
// second proxy can be pointed at the same one.
func fixedConfig(addr netip.AddrPort, server netip.AddrPort) *session.Config {
	cfg := testConfig("uring", server)
	cfg.Frontends[0].Binds = []netip.AddrPort{addr}
	return cfg
}

// A second ringproxy on an address the first listens on is refused,
// though both sockets would be SO_REUSEPORT and the kernel would let it
// take half of the clients; the first serves on untouched.
func TestSecondProxyOnAnAddressInUseIsRefused(t *testing.T) {
	echo := testbed.StartEcho(t)
	addr := testbed.FreeAddrs(t, 1)[0]
	startProxy(t, fixedConfig(addr, echo.Addr()))

	second, err := session.New(fixedConfig(addr, echo.Addr()), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	err = second.Start()
	if err == nil {
		second.Shutdown(0)
		t.Fatal("a second proxy started on an address the first listens on")
	}
	want := fmt.Sprintf("frontend web: bind %s: address already in use by another process (set reuseport_share = true in [global] to share it)", addr)
	if err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Start: %v\nwant %s", err, want)
	}
	for range 20 { // every client reaches the first
		if err := echoLine(addr); err != nil {
			t.Fatal(err)
		}
	}
}

// An address held by a socket that SO_REUSEPORT cannot join (another
// program's plain listener) gets the kernel's word alone: sharing would
// not help.
func TestBindBesideAPlainListener(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := netip.MustParseAddrPort(busy.Addr().String())
	for _, share := range []bool{false, true} {
		cfg := fixedConfig(addr, testbed.DeadAddr(t))
		cfg.Global.ReuseportShare = share
		p, err := session.New(cfg, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		err = p.Start()
		if want := fmt.Sprintf("frontend web: bind %s: address already in use", addr); err == nil || err.Error() != want {
			if err == nil {
				p.Shutdown(0)
			}
			t.Errorf("reuseport_share %v: Start: %v, want %q", share, err, want)
		}
	}
}

// With reuseport_share both proxies listen, and the kernel spreads new
// clients between them.
func TestReuseportShareBothListen(t *testing.T) {
	echo := testbed.StartEcho(t)
	addr := testbed.FreeAddrs(t, 1)[0]
	first, _ := startProxy(t, fixedConfig(addr, echo.Addr()))
	cfg := fixedConfig(addr, echo.Addr())
	cfg.Global.ReuseportShare = true
	second, _ := startProxy(t, cfg)
	// Each of 64 connections goes to one of 4 sockets by a hash of its
	// ports: the chance that one proxy gets none is 2^-63.
	for range 64 {
		if err := echoLine(addr); err != nil {
			t.Fatal(err)
		}
	}
	testbed.WaitFor(t, 2*time.Second, func() bool { return first.Stats().Accepted+second.Stats().Accepted == 64 }, "64 sessions counted")
	if a, b := first.Stats().Accepted, second.Stats().Accepted; a == 0 || b == 0 {
		t.Fatalf("sessions: first %d, second %d; want both to have some", a, b)
	}
}

// A reload takes the old generation's sockets over, and may add an
// address that overlaps one the old generation listens on (0.0.0.0
// beside 127.0.0.1, same port): neither is refused, and no client is
// while it happens.
func TestReloadIsNotRefused(t *testing.T) {
	echo := testbed.StartEcho(t)
	addr := testbed.FreeAddrs(t, 1)[0]
	old, _ := startProxy(t, fixedConfig(addr, echo.Addr()))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var once sync.Once
	end := func() { once.Do(func() { close(stop) }); wg.Wait() }
	defer end() // a Fatal below must not leave clients running into later tests
	var mu sync.Mutex
	var failures []error
	served := 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := echoLine(addr)
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					served++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	cfg := fixedConfig(addr, echo.Addr())
	wildcard := netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port())
	cfg.Frontends[0].Binds = append(cfg.Frontends[0].Binds, wildcard)
	next := reloadTo(t, old, cfg)
	time.Sleep(100 * time.Millisecond)
	end()
	if len(failures) > 0 || served == 0 {
		t.Fatalf("%d clients served, %d failed across the reload; first: %v", served, len(failures), failures)
	}
	if got := next.Addrs("web"); len(got) != 2 || got[1] != wildcard {
		t.Fatalf("new generation listens on %v", got)
	}
}

// A ringproxy started right after another stopped binds the same
// address, though the sessions the first closed left connections in
// TIME_WAIT on its port.
func TestRestartBesideTimeWait(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		srv := testbed.StartServerClosesFirst(t, []byte("bye\n"))
		addr := testbed.FreeAddrs(t, 1)[0]
		cfg := fixedConfig(addr, srv.Addr())
		cfg.Global.Engine = eng
		first, err := session.New(cfg, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		if err := first.Start(); err != nil {
			t.Fatal(err)
		}
		// The server closes first, so the proxy's FIN reaches the client
		// before the client's reaches the proxy: the proxy's end of each
		// connection waits in TIME_WAIT.
		for range 4 {
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
		first.Shutdown(time.Second)
		if n := timeWaits(t, addr); n == 0 {
			t.Fatalf("no connection in TIME_WAIT on %s: the test would prove nothing", addr)
		}
		second, err := session.New(fixedConfig(addr, srv.Addr()), quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		if err := second.Start(); err != nil {
			t.Fatalf("restart on %s: %v", addr, err)
		}
		second.Shutdown(time.Second)
	})
}

// timeWaits counts the IPv4 connections in TIME_WAIT whose local end is
// addr, from /proc/net/tcp.
func timeWaits(t *testing.T, addr netip.AddrPort) int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := addr.Addr().As4()
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], addr.Port())
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 3 && f[1] == local && f[3] == "06" {
			n++
		}
	}
	return n
}

// echoLine sends a line through the proxy at addr and wants it back.
func echoLine(addr netip.AddrPort) error {
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		return fmt.Errorf("echo through %s: %q, %v", addr, line, err)
	}
	return nil
}

// ProbeBind's errors are the kernel's reasons, after "bind ADDR".
func TestProbeBindReasons(t *testing.T) {
	notLocal := netip.MustParseAddrPort("10.255.0.1:80")
	if local(t, notLocal.Addr()) {
		t.Skipf("%s is local here", notLocal.Addr())
	}
	_, err := session.ProbeBind(notLocal, false, nil)
	if want := "bind 10.255.0.1:80: cannot assign requested address"; err == nil || err.Error() != want || !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("ProbeBind(%s): %v, want %q", notLocal, err, want)
	}
	if v, err := session.ProbeBind(testbed.FreeAddrs(t, 1)[0], false, nil); v != session.BindFree || err != nil {
		t.Errorf("a free address: %v %v", v, err)
	}
	if err := testbed.WithoutBindCapability(func() error {
		_, err := session.ProbeBind(netip.MustParseAddrPort("127.0.0.1:1"), false, nil)
		return err
	}); err == nil || err.Error() != "bind 127.0.0.1:1: permission denied" {
		t.Errorf("port 1 without CAP_NET_BIND_SERVICE: %v", err)
	}
}

// The probe asks own only about an address in use, and takes its word.
func TestProbeBindOwn(t *testing.T) {
	echo := testbed.StartEcho(t)
	_, addr := startProxy(t, testConfig("uring", echo.Addr()))
	var asked []netip.AddrPort
	own := func(ap netip.AddrPort) bool { asked = append(asked, ap); return true }
	if v, err := session.ProbeBind(addr, false, own); v != session.BindOwn || err != nil || len(asked) != 1 || asked[0] != addr {
		t.Errorf("ProbeBind(%s) of our own: %v %v, own asked %v", addr, v, err, asked)
	}
	if v, err := session.ProbeBind(addr, true, nil); v != session.BindShared || err != nil {
		t.Errorf("ProbeBind(%s) with share: %v %v", addr, v, err)
	}
	free := testbed.FreeAddrs(t, 1)[0]
	if v, err := session.ProbeBind(free, false, own); v != session.BindFree || err != nil || len(asked) != 1 {
		t.Errorf("ProbeBind(%s) free: %v %v, own asked %v", free, v, err, asked)
	}
}

func TestOverlaps(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:80", "127.0.0.1:80", true},
		{"127.0.0.1:80", "0.0.0.0:80", true},
		{"0.0.0.0:80", "10.0.0.1:80", true},
		{"127.0.0.1:80", "127.0.0.2:80", false},
		{"127.0.0.1:80", "127.0.0.1:81", false},
		{"[::]:80", "127.0.0.1:80", false}, // IPV6_V6ONLY
		{"[::]:80", "[::1]:80", true},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1:80", true},
	} {
		if got := session.Overlaps(ap(c.a), ap(c.b)); got != c.want {
			t.Errorf("Overlaps(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

func local(t *testing.T, a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok && n.Contains(a.AsSlice()) {
			return true
		}
	}
	return false
}
