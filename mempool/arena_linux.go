package mempool

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Arena is one mmap'd region cut into equal buffers. Its memory is outside
// the Go heap so the kernel can keep it registered (pinned) for the life of
// a ring, and the garbage collector never scans or moves it. Pages are not
// populated: a buffer costs memory once data has passed through it, so a
// proxy holding idle connections stays small.
type Arena struct {
	mem     []byte
	bufSize int
	count   int
}

// NewArena maps count buffers of bufSize bytes each.
func NewArena(count, bufSize int) (*Arena, error) {
	if count <= 0 || bufSize <= 0 {
		return nil, fmt.Errorf("buffer arena: bad size %d x %d", count, bufSize)
	}
	mem, err := unix.Mmap(-1, 0, count*bufSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("buffer arena: mmap %d x %d bytes: %w", count, bufSize, err)
	}
	return &Arena{mem: mem, bufSize: bufSize, count: count}, nil
}

// Buf is buffer i, full length.
func (a *Arena) Buf(i uint16) []byte {
	off := int(i) * a.bufSize
	return a.mem[off : off+a.bufSize : off+a.bufSize]
}

// Addr is the address of buffer i's first byte, for SQEs.
func (a *Arena) Addr(i uint16) uintptr {
	return uintptr(unsafe.Pointer(&a.mem[0])) + uintptr(i)*uintptr(a.bufSize)
}

// Base and Len describe the whole region, for buffer registration.
func (a *Arena) Base() uintptr { return uintptr(unsafe.Pointer(&a.mem[0])) }
func (a *Arena) Len() int      { return len(a.mem) }

// Bytes is the whole region.
func (a *Arena) Bytes() []byte { return a.mem }

// BufSize is the size of one buffer; Count the number of buffers.
func (a *Arena) BufSize() int { return a.bufSize }
func (a *Arena) Count() int   { return a.count }

// Close unmaps the region. No buffer may be used after it.
func (a *Arena) Close() error {
	if a.mem == nil {
		return nil
	}
	err := unix.Munmap(a.mem)
	a.mem = nil
	return err
}
