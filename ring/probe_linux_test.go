package ring

import (
	"strings"
	"testing"

	"ringproxy/mempool"
)

// This kernel (6.x in CI) has every feature the engine needs; the probe
// must find them, or the engine would refuse to start here.
func TestProbeFindsEngineFeatures(t *testing.T) {
	f := Probe()
	t.Logf("\n%s", f)
	if err := f.UringUsable(); err != nil {
		t.Fatalf("probe says the uring engine cannot run: %v", err)
	}
	if !f.MultishotRecv || !f.RegisteredBuffers {
		t.Errorf("probe missed features a 6.x kernel has: %+v", f)
	}
}

func TestUringUsableNamesMissingFeature(t *testing.T) {
	f := Features{Kernel: "5.10.0", ExtArg: true, OpConnect: true, OpShutdown: true}
	err := f.UringUsable()
	if err == nil || !strings.Contains(err.Error(), "provided buffer rings") || !strings.Contains(err.Error(), "5.10.0") {
		t.Fatalf("UringUsable = %v, want it to name the kernel and the missing buffer rings", err)
	}
}

// On a kernel without buffer rings, the uring engine refuses to start,
// names what is missing and points at the epoll engine, which starts.
func TestOldKernelUringFailsWithAdvice(t *testing.T) {
	a, err := mempool.NewArena(4, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	old := Features{Kernel: "5.15.0", ExtArg: true, OpConnect: true, OpShutdown: true}
	_, err = newEngine("uring", a, Options{}, old)
	if err == nil {
		t.Fatal("uring engine started on a kernel without buffer rings")
	}
	for _, want := range []string{"5.15.0", "provided buffer rings (Linux 5.19)", "--engine epoll"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	e, err := newEngine("epoll", a, Options{}, old)
	if err != nil {
		t.Fatalf("epoll engine on the same kernel: %v", err)
	}
	e.Release()
}
