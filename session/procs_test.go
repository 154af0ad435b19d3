package session_test

import (
	"runtime"
	"testing"

	"ringproxy/session/testbed"
)

// Worker loops keep their P through short waits; the process keeps one P
// more than every generation's loops for the control plane, and gives it
// back when they exit.
func TestControlPlaneKeepsAP(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	cfg := testConfig("uring", testbed.StartEcho(t).Addr())
	cfg.Global.Workers = base
	p, _ := startProxy(t, cfg)
	if got := runtime.GOMAXPROCS(0); got < base+1 {
		t.Fatalf("GOMAXPROCS %d with %d worker loops: no P left for the control plane", got, base)
	}
	cfg2 := testConfig("epoll", testbed.StartEcho(t).Addr())
	cfg2.Global.Workers = 2
	p2, _ := startProxy(t, cfg2)
	if got := runtime.GOMAXPROCS(0); got < base+3 {
		t.Fatalf("GOMAXPROCS %d with %d worker loops in two generations", got, base+2)
	}
	p2.Shutdown(0)
	p.Shutdown(0)
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("GOMAXPROCS %d once every loop has exited, want %d back", got, base)
	}
}
