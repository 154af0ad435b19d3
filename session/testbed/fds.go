package testbed

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// fillHeadroom is how many fds above the highest one open ExhaustFDs lets
// the process have: enough to leave a few spare, few enough to fill fast.
const fillHeadroom = 64

// ExhaustFDs fills the test process's fd table so that exactly spare fds
// are left. With none left, a client connected then (see Presocket) makes
// a server's accept in the process fail with EMFILE, deterministically,
// until release. It lowers the
// soft RLIMIT_NOFILE to just above the highest fd open now (filling the
// default hard limit would take a million fds) and fills the rest with
// /dev/null. release closes the fillers and restores the limit; it runs at
// cleanup too, so a failing test cannot leave the process crippled for the
// tests after it. Nothing else in the process may open fds meanwhile:
// call it only from a test that does not run in parallel.
func ExhaustFDs(t testing.TB, spare int) (release func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatalf("exhaust fds: getrlimit: %v", err)
	}
	top, err := highestFD()
	if err != nil {
		t.Fatalf("exhaust fds: %v", err)
	}
	low := old
	low.Cur = uint64(top) + 1 + fillHeadroom
	if low.Cur > old.Cur {
		t.Fatalf("exhaust fds: fd %d open, the soft limit %d leaves no room to fill", top, old.Cur)
	}
	var fillers []int
	var once sync.Once
	release = func() {
		once.Do(func() {
			for _, fd := range fillers {
				syscall.Close(fd)
			}
			fillers = nil
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
				t.Errorf("exhaust fds: restore RLIMIT_NOFILE %d: %v", old.Cur, err)
			}
		})
	}
	t.Cleanup(release)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatalf("exhaust fds: lower RLIMIT_NOFILE to %d: %v", low.Cur, err)
	}
	for {
		fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			release()
			t.Fatalf("exhaust fds: open %s: %v", os.DevNull, err)
		}
		fillers = append(fillers, fd)
	}
	if len(fillers) < spare {
		release()
		t.Fatalf("exhaust fds: only %d fds free, want %d spare", len(fillers), spare)
	}
	for range spare {
		syscall.Close(fillers[len(fillers)-1])
		fillers = fillers[:len(fillers)-1]
	}
	return release
}

// highestFD is the largest fd number the process has open: the fd limit
// bounds fd numbers, not their count.
func highestFD() (int, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	top := 0
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > top {
			top = fd
		}
	}
	return top, nil
}

// Presocket is a client socket made before ExhaustFDs: connecting it
// takes no fd, so it reaches a server's accept queue however full the fd
// table is, while a Dial then would fail itself, or lose its fd to the
// server's accept of an earlier client.
type Presocket struct {
	fd   int
	sa   syscall.Sockaddr
	name string
}

// PresocketUnix makes a socket to connect to the Unix socket at path.
func PresocketUnix(t testing.TB, path string) *Presocket {
	t.Helper()
	return presocket(t, syscall.AF_UNIX, &syscall.SockaddrUnix{Name: path}, path)
}

// PresocketTCP makes a socket to connect to the IPv4 address addr.
func PresocketTCP(t testing.TB, addr netip.AddrPort) *Presocket {
	t.Helper()
	return presocket(t, syscall.AF_INET, &syscall.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}, addr.String())
}

func presocket(t testing.TB, family int, sa syscall.Sockaddr, name string) *Presocket {
	t.Helper()
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("presocket for %s: %v", name, err)
	}
	p := &Presocket{fd: fd, sa: sa, name: name}
	t.Cleanup(func() {
		if p.fd >= 0 {
			syscall.Close(p.fd)
		}
	})
	return p
}

// Connect connects the socket, blocking until the peer's kernel has put
// it in the accept queue.
func (p *Presocket) Connect() error {
	if err := syscall.Connect(p.fd, p.sa); err != nil {
		return fmt.Errorf("connect to %s: %w", p.name, err)
	}
	return nil
}

// Conn turns the connected socket into a net.Conn, which takes a free fd
// (net.FileConn dups it): call it after release.
func (p *Presocket) Conn() (net.Conn, error) {
	f := os.NewFile(uintptr(p.fd), p.name)
	p.fd = -1
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("conn for %s: %w", p.name, err)
	}
	return c, nil
}
