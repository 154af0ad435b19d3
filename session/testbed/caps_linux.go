package testbed

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// WithoutBindCapability runs f as an unprivileged process would bind: on
// an OS thread of its own without CAP_NET_BIND_SERVICE (capabilities are
// per thread; the thread ends with f, never to serve another goroutine).
// Run as another user than root, it only runs f.
func WithoutBindCapability(f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if os.Geteuid() == 0 {
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var data [2]unix.CapUserData
			if err := unix.Capget(&hdr, &data[0]); err != nil {
				done <- fmt.Errorf("capget: %w", err)
				return
			}
			data[0].Effective &^= 1 << unix.CAP_NET_BIND_SERVICE
			if err := unix.Capset(&hdr, &data[0]); err != nil {
				done <- fmt.Errorf("capset: %w", err)
				return
			}
		}
		done <- f()
	}()
	return <-done
}
