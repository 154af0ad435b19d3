package mempool

import "testing"

type item struct {
	gen uint32
	v   int
}

func TestSlabExhaustionAndReuse(t *testing.T) {
	s := NewSlab[item](3)
	seen := map[uint32]bool{}
	for i := 0; i < 3; i++ {
		idx, it, ok := s.Get()
		if !ok || it == nil || seen[idx] {
			t.Fatalf("get %d: idx=%d ok=%v dup=%v", i, idx, ok, seen[idx])
		}
		seen[idx] = true
		it.gen++
	}
	if _, _, ok := s.Get(); ok {
		t.Fatal("fourth Get on a 3-slot slab succeeded")
	}
	if s.InUse() != 3 {
		t.Fatalf("InUse = %d, want 3", s.InUse())
	}
	s.Put(1)
	idx, it, ok := s.Get()
	if !ok || idx != 1 || it.gen != 1 {
		t.Fatalf("reuse: idx=%d ok=%v gen=%d; want slot 1 with its generation kept", idx, ok, it.gen)
	}
}

func TestSlabGetPutAllocatesNothing(t *testing.T) {
	s := NewSlab[item](16)
	allocs := testing.AllocsPerRun(1000, func() {
		idx, _, _ := s.Get()
		s.Put(idx)
	})
	if allocs != 0 {
		t.Fatalf("Get/Put allocates %.1f times per run", allocs)
	}
}

func TestArenaBuffersAreDisjoint(t *testing.T) {
	a, err := NewArena(4, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := uint16(0); i < 4; i++ {
		b := a.Buf(i)
		if len(b) != 4096 || cap(b) != 4096 {
			t.Fatalf("buf %d: len %d cap %d", i, len(b), cap(b))
		}
		for j := range b {
			b[j] = byte(i)
		}
	}
	for i := uint16(0); i < 4; i++ {
		if b := a.Buf(i); b[0] != byte(i) || b[4095] != byte(i) {
			t.Fatalf("buf %d overwritten by a neighbour", i)
		}
		if a.Addr(i) != a.Base()+uintptr(i)*4096 {
			t.Fatalf("Addr(%d) off", i)
		}
	}
}

func TestArenaRejectsBadSizes(t *testing.T) {
	if _, err := NewArena(0, 4096); err == nil {
		t.Fatal("NewArena(0, 4096) succeeded")
	}
	if _, err := NewArena(4, -1); err == nil {
		t.Fatal("NewArena(4, -1) succeeded")
	}
}
