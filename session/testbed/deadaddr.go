package testbed

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// DeadAddr returns an address on 127.0.0.1 where connects fail with
// ECONNREFUSED.
//
// Instead of binding a port and closing it, which leaves the port free for
// any other test to grab, it keeps a socket bound but never listening until
// the test ends: the kernel answers SYNs to it with RST, and nobody else can
// bind the port meanwhile (the socket has no SO_REUSEADDR).
func DeadAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("dead address: socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("dead address: bind 127.0.0.1:0: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("dead address: getsockname: %v", err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
}

// FreeAddrs returns n distinct loopback addresses nobody listens on now.
// Each is chosen while the ones before it are still held, so the kernel
// cannot hand the same port out twice. The port is chosen on the wildcard,
// so it is free on every address, not only on 127.0.0.1: a test may add
// 0.0.0.0:P beside it, which a client bound to 127.1.x.y:P (or its
// TIME_WAIT) would refuse.
func FreeAddrs(t testing.TB, n int) []netip.AddrPort {
	t.Helper()
	var out []netip.AddrPort
	for range n {
		ln, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)))
	}
	return out
}
