package ring

import (
	"strings"
	"testing"
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
