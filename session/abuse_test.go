package session_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// wellBehaved runs n integrity transfers concurrently and fails t on any
// mismatch.
func wellBehaved(t *testing.T, addr netip.AddrPort, n, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := testbed.IntegrityRun(ctx, addr, size, int64(1000+i)); err != nil {
				t.Errorf("well-behaved client %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
}

// Slowloris: 2,000 connections trickling a byte every 2 s against a 1 s
// timeout_client are cut, while normal clients keep being served.
func TestSlowlorisCutWhileOthersServed(t *testing.T) {
	if testing.Short() {
		t.Skip("slowloris needs a few seconds")
	}
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Global.MaxConn = 3000
		cfg.Frontends[0].TimeoutClient = time.Second
		p, addr := startProxy(t, cfg)
		const slow = 2000
		var conns []net.Conn
		for i := 0; i < slow; i++ {
			c, err := dialFrom(clientAddr(i), addr)
			if err != nil {
				t.Fatalf("slow client %d: %v", i, err)
			}
			defer c.Close()
			c.Write([]byte{'G'})
			conns = append(conns, c)
		}
		stop := make(chan struct{})
		var trickle sync.WaitGroup
		trickle.Add(1)
		go func() { // a byte every 2 s on each: always later than the timeout
			defer trickle.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Second):
				}
				for _, c := range conns {
					c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
					c.Write([]byte{'E'})
				}
			}
		}()
		wellBehaved(t, addr, 10, 1<<20)
		testbed.WaitFor(t, 10*time.Second, func() bool {
			return p.Stats().Ended[session.ReasonClientTimeout] >= slow
		}, "every slow client to be cut by timeout_client")
		close(stop)
		trickle.Wait()
		wellBehaved(t, addr, 10, 1<<20)
	})
}

// Flood: 20,000 connection attempts (connect, then reset) against
// maxconn = 1000. The process stays up, nothing is left behind, and
// well-behaved clients are served during and after.
func TestFloodAgainstMaxconn(t *testing.T) {
	if testing.Short() {
		t.Skip("the flood needs a few seconds")
	}
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Global.MaxConn = 1000
		p, addr := startProxy(t, cfg)
		fdsBefore := openFds(t)
		var heapBefore runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&heapBefore)

		const attempts, flooders = 20000, 32
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < flooders; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > attempts {
						return
					}
					c, err := dialFrom(clientAddr(int(i%4000)+4096), addr)
					if err != nil {
						failed.Add(1)
						continue
					}
					c.(*net.TCPConn).SetLinger(0) // reset: no TIME_WAIT to run out of ports
					c.Close()
				}
			}()
		}
		wellBehaved(t, addr, 8, 256<<10)
		wg.Wait()
		wellBehaved(t, addr, 8, 256<<10)
		testbed.WaitFor(t, 10*time.Second, func() bool { return p.Stats().CurConns == 0 }, "every flood session to end")
		testbed.WaitFor(t, 5*time.Second, func() bool { return openFds(t) <= fdsBefore+4 }, "fds back to their level")
		var heapAfter runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&heapAfter)
		if grew := int64(heapAfter.HeapInuse) - int64(heapBefore.HeapInuse); grew > 32<<20 {
			t.Fatalf("heap grew by %d MiB over the flood", grew>>20)
		}
		st := p.Stats()
		t.Logf("flood: %d attempts, %d dial errors, %d sessions, max %d at once", attempts, failed.Load(), st.Accepted, st.MaxConns)
		if st.MaxConns > 1000 {
			t.Fatalf("maxconn 1000, %d sessions at once", st.MaxConns)
		}
	})
}

// childEnv names the address a child proxy process should serve; see
// TestMain.
const childEnv = "RINGPROXY_TEST_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChildProxy(spec))
	}
	if os.Getenv(childEchoEnv) != "" {
		os.Exit(runChildEcho()) // fault_test.go
	}
	os.Exit(m.Run())
}

// runChildProxy runs a proxy in a process of its own, with a low fd limit:
// spec is "engine,backend-addr,nofile[,mode]". Mode "check" adds a fast
// tcp health check of the backend; "auto" leaves maxconn to be derived
// from the fd limit, as a config without maxconn does. It prints its
// address and serves until killed.
func runChildProxy(spec string) int {
	parts := strings.Split(spec, ",")
	if len(parts) < 3 {
		return 2
	}
	eng, backend := parts[0], parts[1]
	nofile, _ := strconv.Atoi(parts[2])
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(nofile), Max: uint64(nofile)}); err != nil {
		fmt.Println("setrlimit:", err)
		return 2
	}
	cfg := testConfig(eng, netip.MustParseAddrPort(backend))
	cfg.Global.Workers = 1
	cfg.Global.MaxSock = 1 << 20 // let accept itself hit EMFILE
	switch mode := append(parts, "")[3]; mode {
	case "check":
		cfg.Backends[0].Check = &session.Check{Kind: "tcp", Interval: 50 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 2}
	case "auto":
		cfg.Global.MaxSock = 0
		cfg.Global.MaxConn, cfg.Global.MaxConnAuto = 20000, true
	}
	p, err := session.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err == nil {
		err = p.Start()
	}
	if err != nil {
		fmt.Println("start:", err)
		return 2
	}
	// One fd held back: freed on SIGUSR2 once the table is full, it goes
	// to the next accept, whose session then finds no fd for its server
	// socket. Without it, whether any session lacks one depends on the
	// parity of the fds free at the start.
	spare, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println("open spare fd:", err)
		return 2
	}
	fmt.Println(p.Addrs("web")[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGUSR1, unix.SIGUSR2)
	for s := range sig {
		if s == unix.SIGUSR2 {
			unix.Close(spare)
			continue
		}
		st := p.Stats()
		fmt.Println("stats", st.SocketBackoffs, st.AcceptErrors, st.Ended[session.ReasonConnectFailed], st.ServerTransitions, st.Ended[session.ReasonNoServer])
	}
	return 0
}

// FD exhaustion: a proxy limited to 128 fds gets more clients than it can
// hold; accept fails with EMFILE, the listener pauses instead of spinning
// or dying, and once clients leave it serves again.
// childProxy is a proxy in a process of its own (runChildProxy).
type childProxy struct {
	cmd  *exec.Cmd
	out  io.Reader // its stdout: the address, then stats lines
	logs *testbed.LogBuffer
	addr netip.AddrPort
}

func startChildProxy(t *testing.T, eng string, backend netip.AddrPort, nofile int, mode string) *childProxy {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d,%s", childEnv, eng, backend, nofile, mode))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &childProxy{cmd: cmd, out: out, logs: &testbed.LogBuffer{}}
	cmd.Stderr = c.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var line string
	if _, err := fmt.Fscanln(out, &line); err != nil {
		t.Fatalf("child proxy: %v; its log:\n%s", err, c.logs.String())
	}
	if c.addr, err = netip.ParseAddrPort(line); err != nil {
		t.Fatalf("child proxy said %q", line)
	}
	return c
}

// childStats are the counters a child proxy prints on SIGUSR1.
type childStats struct {
	backoffs, acceptErrors, connectFailed, transitions, noServer int
}

func (c *childProxy) stats(t *testing.T) childStats {
	t.Helper()
	c.cmd.Process.Signal(unix.SIGUSR1)
	var st childStats
	if _, err := fmt.Fscanln(c.out, new(string), &st.backoffs, &st.acceptErrors, &st.connectFailed, &st.transitions, &st.noServer); err != nil {
		t.Fatalf("child stats: %v; its log:\n%s", err, c.logs.String())
	}
	return st
}

// holdClients opens n connections to addr and keeps them open.
func dialHeld(t *testing.T, addr netip.AddrPort, n int) []net.Conn {
	t.Helper()
	var held []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		held = append(held, c)
	}
	return held
}

func TestFDExhaustionRecovers(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		child := startChildProxy(t, eng, echo.Addr(), 128, "")
		cmd, addr, logs := child.cmd, child.addr, child.logs
		// 150 held clients need ~300 fds in the proxy: far past 128.
		held := dialHeld(t, addr, 150)
		time.Sleep(500 * time.Millisecond)
		cpu0 := childCPU(t, cmd.Process.Pid)
		time.Sleep(time.Second)
		if spent := childCPU(t, cmd.Process.Pid) - cpu0; spent > 300*time.Millisecond {
			t.Fatalf("exhausted proxy burned %v of CPU in 1s: it spins", spent)
		}
		if !strings.Contains(logs.String(), "too many open files") {
			t.Fatalf("the child never ran out of fds; its log:\n%s", logs.String())
		}
		// One fd freed: the paused listener's next accept takes it, and
		// that session finds none for its server socket. It waits rather
		// than fails.
		cmd.Process.Signal(unix.SIGUSR2)
		var st childStats
		deadline := time.Now().Add(5 * time.Second)
		for {
			if st = child.stats(t); st.backoffs > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("exhausted: %d socket backoffs, %d accept errors, %d connect failures", st.backoffs, st.acceptErrors, st.connectFailed)
		if st.backoffs == 0 || st.connectFailed != 0 {
			t.Fatalf("fd shortage: %d socket backoffs, %d sessions failed; want waits, not failures", st.backoffs, st.connectFailed)
		}
		for _, c := range held {
			c.Close()
		}
		if err := cmd.Process.Signal(unix.Signal(0)); err != nil {
			t.Fatalf("child proxy died: %v", err)
		}
		// Once the clients are gone it serves again, within a few pauses.
		testbed.WaitFor(t, 10*time.Second, func() bool {
			_, err := testbed.IntegrityRun(context.Background(), addr, 64<<10, 9)
			return err == nil
		}, "the proxy to serve again after fd exhaustion")
		time.Sleep(time.Second) // the burst's end is said once accepts work for a second
		if _, err := testbed.IntegrityRun(context.Background(), addr, 64<<10, 10); err != nil {
			t.Fatal(err)
		}
		// A burst is logged once, not once a pause.
		if n := strings.Count(logs.String(), "accept failed"); n != 1 {
			t.Errorf("%d accept failure lines over %d errors; want one a burst:\n%s", n, child.stats(t).acceptErrors, logs.String())
		}
		if !strings.Contains(logs.String(), "accepting again") {
			t.Errorf("the end of the burst was not logged:\n%s", logs.String())
		}
	})
}

// Our own fd shortage says nothing about the servers: health checks that
// fail with EMFILE while the table is full are not counted, so no server
// goes DOWN and, once the flood is over, no client is refused with
// no-server.
func TestFDShortageLeavesServersUp(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		child := startChildProxy(t, eng, echo.Addr(), 128, "check")
		held := dialHeld(t, child.addr, 150)
		testbed.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(child.logs.String(), "too many open files") },
			"the child to run out of fds")
		time.Sleep(500 * time.Millisecond) // ten checks at 50 ms, all meeting a full table
		for _, c := range held {
			c.Close()
		}
		testbed.WaitFor(t, 10*time.Second, func() bool {
			_, err := testbed.IntegrityRun(context.Background(), child.addr, 64<<10, 9)
			return err == nil
		}, "the proxy to serve again after fd exhaustion")
		for i := 0; i < 20; i++ {
			if _, err := testbed.IntegrityRun(context.Background(), child.addr, 16<<10, int64(i)); err != nil {
				t.Fatalf("client %d after the flood: %v", i, err)
			}
		}
		if st := child.stats(t); st.transitions != 0 || st.noServer != 0 {
			t.Fatalf("fd shortage: %d server transitions, %d clients refused with no-server; want none; log:\n%s",
				st.transitions, st.noServer, child.logs.String())
		}
	})
}

// Without maxconn in the config, maxconn is derived from the fd limit
// when the default does not fit, as HAProxy does, and said at start: a
// flood then waits in the backlog instead of exhausting the fd table.
func TestDefaultMaxconnFitsFdLimit(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		child := startChildProxy(t, eng, echo.Addr(), 200, "auto")
		// The child logs it before it prints its address, but its stderr
		// reaches the buffer through a copying goroutine that may lag.
		testbed.WaitFor(t, 5*time.Second, func() bool {
			return strings.Contains(child.logs.String(), "maxconn lowered to fit the fd limit")
		}, "word of the lowered maxconn at start")
		held := dialHeld(t, child.addr, 150)
		time.Sleep(time.Second)
		st := child.stats(t)
		for _, c := range held {
			c.Close()
		}
		if st.acceptErrors != 0 || st.backoffs != 0 || strings.Contains(child.logs.String(), "too many open files") {
			t.Fatalf("with a derived maxconn: %d accept errors, %d socket backoffs; want none; log:\n%s",
				st.acceptErrors, st.backoffs, child.logs.String())
		}
		for i := 0; i < 20; i++ {
			if _, err := testbed.IntegrityRun(context.Background(), child.addr, 16<<10, int64(i)); err != nil {
				t.Fatalf("client %d after the flood: %v", i, err)
			}
		}
	})
}

// childCPU is a process's user+system CPU time.
func childCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the ")" that ends the command name; utime and stime
	// are the 14th and 15th of the line, the 12th and 13th after it.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond // CLK_TCK 100
}
