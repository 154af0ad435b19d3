package ring

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"

	"ringproxy/mempool"
)

// bufEntry is struct io_uring_buf. The kernel reads the ring's tail from
// the resv field of entry 0.
type bufEntry struct {
	addr uint64
	len  uint32
	bid  uint16
	resv uint16
}

// bufRing is a provided buffer ring, registered by hand because giouring's
// SetupBufRing ignores flags and never unmaps.
type bufRing struct {
	mem     []byte
	entries []bufEntry
	mask    uint16
	tail    uint16 // local tail: entries added, published or not
	dirty   bool   // tail moved since the last publish
}

func (b *bufRing) register(r *giouring.Ring, a *mempool.Arena, group uint16) error {
	n := 1
	for n < a.Count() {
		n <<= 1
	}
	size := n * int(unsafe.Sizeof(bufEntry{}))
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("io_uring: buffer ring mmap: %w", err)
	}
	b.mem = mem
	b.entries = unsafe.Slice((*bufEntry)(unsafe.Pointer(&mem[0])), n)
	b.mask = uint16(n - 1)
	reg := giouring.BufReg{RingAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), RingEntries: uint32(n), Bgid: group}
	ret, errno := r.Register(r.RingFd(), giouring.RegisterPbufRing, unsafe.Pointer(&reg), 1)
	if errno != 0 || int(ret) < 0 {
		return fmt.Errorf("io_uring: register buffer ring of %d entries (needs Linux 5.19): %w", n, errno)
	}
	for i := 0; i < a.Count(); i++ {
		b.add(uint16(i), a)
	}
	b.publish()
	return nil
}

// add queues buffer id for the kernel; publish makes it visible.
func (b *bufRing) add(id uint16, a *mempool.Arena) {
	e := &b.entries[b.tail&b.mask]
	e.addr = uint64(a.Addr(id))
	e.len = uint32(a.BufSize())
	e.bid = id
	b.tail++
	b.dirty = true
}

// publish stores the tail with release semantics. Go has no 16-bit atomic
// store, so it stores the 32-bit word (bid, tail) of entry 0; bid is ours
// and unchanged.
func (b *bufRing) publish() {
	if !b.dirty {
		return
	}
	b.dirty = false
	word := (*uint32)(unsafe.Pointer(&b.entries[0].bid))
	atomic.StoreUint32(word, uint32(b.tail)<<16|uint32(b.entries[0].bid))
}

func (b *bufRing) unmap() error {
	if b.mem == nil {
		return nil
	}
	err := unix.Munmap(b.mem)
	b.mem, b.entries = nil, nil
	return err
}
