package session

import (
	"net/netip"
	"testing"
	"time"
)

func TestFreqCtrSlidingWindow(t *testing.T) {
	var f freqCtr
	for i := 0; i < 10; i++ {
		if ok, _ := f.take(0, 10); !ok {
			t.Fatalf("event %d of 10 refused", i)
		}
	}
	if ok, wait := f.take(int64(100*time.Millisecond), 10); ok || wait <= 0 || wait > time.Second {
		t.Fatalf("11th event in the same second: ok %v wait %v", ok, wait)
	}
	// Half way through the next second, half of last second's 10 still
	// count: 5 more fit.
	at := int64(1500 * time.Millisecond)
	n := 0
	for {
		ok, _ := f.take(at, 10)
		if !ok {
			break
		}
		n++
	}
	if n != 5 {
		t.Fatalf("1.5s in: %d events allowed, want 5", n)
	}
	// Two seconds of silence forget everything.
	if ok, _ := f.take(int64(4*time.Second), 10); !ok {
		t.Fatal("refused after a long pause")
	}
}

func TestSourceRatesBoundedAndPerSource(t *testing.T) {
	r := newSourceRates()
	a := netip.MustParseAddr("192.0.2.1")
	for i := 0; i < 3; i++ {
		if !r.take(a, 0, 3) {
			t.Fatalf("connection %d of 3 refused", i)
		}
	}
	if r.take(a, 0, 3) {
		t.Fatal("4th connection within a second allowed at 3/s")
	}
	if !r.take(netip.MustParseAddr("192.0.2.2"), 0, 3) {
		t.Fatal("another source refused")
	}
	// Far more sources than slots: the table does not grow, and a source
	// counted just now is still remembered afterwards.
	for i := 0; i < 4*sourceSlots; i++ {
		r.take(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), int64(time.Second), 3)
	}
	if len(r.slots) != sourceSlots {
		t.Fatalf("table grew to %d", len(r.slots))
	}
	if !r.take(a, int64(3*time.Second), 3) {
		t.Fatal("an old source stays blocked after eviction and a long pause")
	}
}
