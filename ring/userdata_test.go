package ring

import "testing"

func TestUserDataRoundTrip(t *testing.T) {
	cases := []struct {
		op   Op
		slot uint32
		gen  uint32
	}{
		{OpRecv, 0, 0},
		{OpSend, 1<<32 - 1, GenMask},
		{OpConnect, 12345, 678},
		{OpWake, 7, GenMask + 5}, // gen wraps to 24 bits
	}
	for _, c := range cases {
		u := Pack(c.op, c.slot, c.gen)
		if u.Op() != c.op || u.Slot() != c.slot || u.Gen() != c.gen&GenMask {
			t.Errorf("Pack(%v,%d,%d) decoded as %v", c.op, c.slot, c.gen, u)
		}
	}
}

func TestUserDataGenerationsDiffer(t *testing.T) {
	// A recycled slot gets a new generation: the tags must differ.
	a, b := Pack(OpRecv, 9, 1), Pack(OpRecv, 9, 2)
	if a == b || a.Slot() != b.Slot() {
		t.Fatalf("tags for two generations of one slot: %v %v", a, b)
	}
}
