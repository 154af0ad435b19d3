package session

import (
	"fmt"
	"net/netip"

	"ringproxy/ring"
)

// listenBacklog is the kernel accept queue of each listening socket.
const listenBacklog = 4096

// bindAll opens one listening socket per worker per bind, or takes over
// the previous generation's sockets for that address (see Inherit). A
// bind to port 0 gets a kernel-chosen port for the first worker; the
// others bind that.
func (p *Proxy) bindAll(workers int) ([][]*listener, error) {
	ls := make([][]*listener, workers)
	p.bound = map[netip.AddrPort][]int{}
	for _, fe := range p.fes {
		for _, ap := range fe.cfg.Binds {
			fds, ap, err := p.listenFds(fe, ap, workers)
			if err != nil {
				for _, wl := range ls {
					for _, l := range wl {
						ring.CloseNow(l.fd)
					}
				}
				return nil, fmt.Errorf("frontend %s: %w", fe.cfg.Name, err)
			}
			// A worker takes more than one socket of a bind only when the
			// previous generation had more workers: none is closed, so
			// no client waiting in a socket's backlog is refused.
			for j, fd := range fds {
				i := j % workers
				ls[i] = append(ls[i], &listener{idx: uint32(len(ls[i])), fe: fe, fd: fd, addr: ap})
			}
			p.bound[ap] = fds
			p.binds[fe.cfg.Name] = append(p.binds[fe.cfg.Name], ap)
			fe.sockets += len(fds)
			p.sockets += len(fds)
		}
	}
	return ls, nil
}

// listenFds returns the sockets for bind ap of fe, at least one per
// worker: the previous generation's, then new ones, with the frontend's
// options when listeners carry them. ap comes back with its port resolved.
// On error it has closed every socket it had.
func (p *Proxy) listenFds(fe *frontend, ap netip.AddrPort, workers int) (fds []int, _ netip.AddrPort, err error) {
	defer func() {
		if err != nil {
			for _, fd := range fds {
				ring.CloseNow(fd)
			}
		}
	}()
	if fds, err = p.inherited(ap); err != nil {
		return nil, ap, err
	}
	// A kernel-chosen port is free by definition, and sockets added
	// beside inherited ones join this process's own.
	if len(fds) == 0 && ap.Port() != 0 {
		if _, err := ProbeBind(ap, p.cfg.Global.ReuseportShare, p.listensOn); err != nil {
			return nil, ap, err
		}
	}
	for i := len(fds); i < workers; i++ {
		fd, err := ring.Listen(ap, listenBacklog)
		if err != nil {
			return fds, ap, err
		}
		if ap.Port() == 0 {
			ap, _ = ring.LocalAddr(fd)
		}
		fds = append(fds, fd)
	}
	if p.optsOnListener {
		for _, fd := range fds {
			if err := fe.opts.ApplyListener(fd); err != nil {
				return fds, ap, fmt.Errorf("listen %v: %w", ap, err)
			}
		}
	}
	return fds, ap, nil
}

// listensOn says whether a listener of this instance may hold ap: one
// this generation has opened, or one of the generation it takes over
// from, which goes on listening while this one starts (it may bind
// "0.0.0.0:80" while this one adds "127.0.0.1:80"). Older generations
// close their listeners as soon as they have stopped accepting.
func (p *Proxy) listensOn(ap netip.AddrPort) bool {
	for _, m := range []map[netip.AddrPort][]int{p.bound, p.prevBound()} {
		for a := range m {
			if Overlaps(a, ap) {
				return true
			}
		}
	}
	return false
}

func (p *Proxy) prevBound() map[netip.AddrPort][]int {
	if p.prev == nil {
		return nil
	}
	return p.prev.bound
}
