package session

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"ringproxy/ring"
)

// Every frontend socket is SO_REUSEPORT, so that each worker binds its
// own: the kernel would as gladly let a second ringproxy (or any program
// of the same user asking for SO_REUSEPORT) bind the same address and
// take a share of its clients, which is never what an operator starting
// a second copy by mistake wants. Before a generation binds an address
// anew, ProbeBind binds it for an instant without SO_REUSEPORT: the
// kernel then refuses it (EADDRINUSE) exactly when some socket listens
// there. SO_REUSEADDR stays on, as on the real sockets, so connections
// left in TIME_WAIT by a ringproxy just stopped do not count.

// BindVerdict is what ProbeBind found at an address.
type BindVerdict int

const (
	BindFree   BindVerdict = iota // nothing listens there
	BindOwn                       // own listeners hold it (own said so): binding joins them
	BindShared                    // another process's SO_REUSEPORT listener holds it, and sharing was allowed
)

// BindError is a bind that failed or would fail: "bind ADDR: why".
type BindError struct {
	Addr netip.AddrPort
	Err  error // the kernel's errno
	// Shareable says the holder is a SO_REUSEPORT listener of this user:
	// reuseport_share = true would bind beside it.
	Shareable bool
}

func (e *BindError) Error() string {
	if e.Shareable {
		return fmt.Sprintf("bind %s: address already in use by another process (set reuseport_share = true in [global] to share it)", e.Addr)
	}
	return fmt.Sprintf("bind %s: %v", e.Addr, e.Err)
}

func (e *BindError) Unwrap() error { return e.Err }

// ProbeBind says whether a frontend listener could bind ap now: BindFree,
// BindOwn when some listener holds ap and own(ap) says it is ours, and
// BindShared when share allows binding beside another process's
// SO_REUSEPORT listener. Otherwise it returns a *BindError: the
// address is in use (Shareable when share would have helped), not
// local (EADDRNOTAVAIL), or a privileged port (EACCES). It binds and
// closes sockets that never listen, so no client can reach them.
func ProbeBind(ap netip.AddrPort, share bool, own func(netip.AddrPort) bool) (BindVerdict, error) {
	err := ring.TryBind(ap, ring.BindProbe{})
	switch {
	case err == nil:
		return BindFree, nil
	case !errors.Is(err, unix.EADDRINUSE):
		return 0, &BindError{Addr: ap, Err: err}
	case own != nil && own(ap):
		return BindOwn, nil
	}
	// Someone listens there: would SO_REUSEPORT let us in beside it?
	if ring.TryBind(ap, ring.BindProbe{ReusePort: true}) != nil {
		return 0, &BindError{Addr: ap, Err: err} // another user's, or not SO_REUSEPORT
	}
	if !share {
		return 0, &BindError{Addr: ap, Err: err, Shareable: true}
	}
	return BindShared, nil
}

// Overlaps says whether listeners on a and b would take some of the same
// clients: the same port, and the same address or a wildcard of the
// family. (ringproxy's IPv6 listeners are IPV6_V6ONLY: "[::]" takes no
// IPv4 client.)
func Overlaps(a, b netip.AddrPort) bool {
	if a.Port() != b.Port() {
		return false
	}
	x, y := a.Addr().Unmap(), b.Addr().Unmap()
	if x.Is4() != y.Is4() {
		return false
	}
	return x == y || x.IsUnspecified() || y.IsUnspecified()
}
