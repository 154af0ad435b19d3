package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"ringproxy/ring"
	"ringproxy/session"
)

// `check --bind-test` binds what `run` would, for an instant, and fails
// with the message `run` would give. The systemd unit runs `check` as
// ExecReload while this config's ringproxy runs and holds its addresses,
// and a reload takes them over (frontend sockets are inherited, a stats
// listener whose address did not change stays open): an address that
// ringproxy holds must pass. Check finds it by the admin socket the
// config names (the process serving it, by SO_PEERCRED) and reads which
// TCP sockets it listens on from /proc. Without an admin socket it cannot
// tell its own running ringproxy from another process: an address held
// by a SO_REUSEPORT listener of this user then passes with a note, and
// so does an address in use for the stats listener.

// bindTest tries every frontend bind and the stats address of cfg. notes
// say what passed and why; errs what `run` would fail with.
func bindTest(cfg *session.Config) (notes []string, errs []error) {
	run := findRunning(cfg.Admin.Socket)
	for _, fe := range cfg.Frontends {
		for _, ap := range fe.Binds {
			note, err := testFrontendBind(ap, cfg.Global.ReuseportShare, run)
			if err != nil {
				errs = append(errs, fmt.Errorf("frontend %s: %w", fe.Name, err))
			} else {
				notes = append(notes, fmt.Sprintf("frontend %s: bind %s: %s", fe.Name, ap, note))
			}
		}
	}
	if ap := cfg.Admin.Stats; ap.IsValid() {
		note, err := testStatsBind(ap, run)
		if err != nil {
			errs = append(errs, err)
		} else {
			notes = append(notes, fmt.Sprintf("%s %s: %s", statsWhat, ap, note))
		}
	}
	return notes, errs
}

// statsWhat names the stats listener in bind errors, run's and check's.
const statsWhat = "admin stats"

func testFrontendBind(ap netip.AddrPort, share bool, run *running) (string, error) {
	if ap.Port() == 0 {
		return "a port the kernel chooses: nothing to test", nil
	}
	var own func(netip.AddrPort) bool
	if run.known() {
		own = run.holds
	}
	v, err := session.ProbeBind(ap, share, own)
	var be *session.BindError
	switch {
	case err == nil:
	case errors.As(err, &be) && be.Shareable && !run.known():
		return "in use by a SO_REUSEPORT listener of this user: " + run.why +
			"; run refuses it unless it is this config's ringproxy reloading, or reuseport_share = true", nil
	default:
		return "", err
	}
	switch v {
	case session.BindOwn:
		return run.heldNote(), nil
	case session.BindShared:
		return "in use by another process's SO_REUSEPORT listener: shared (reuseport_share = true)", nil
	}
	return "free", nil
}

func testStatsBind(ap netip.AddrPort, run *running) (string, error) {
	err := ring.TryBind(ap, ring.BindProbe{DualStack: true})
	switch {
	case err == nil:
		return "free", nil
	case !errors.Is(err, unix.EADDRINUSE):
	case !run.known():
		return "in use, not tested: " + run.why, nil
	case run.holds(ap):
		return run.heldNote(), nil
	}
	return "", statsBindError(ap, err)
}

// statsBindError is the stats listener's bind error, run's and check's.
func statsBindError(ap netip.AddrPort, err error) error {
	return fmt.Errorf("%s: %w", statsWhat, &session.BindError{Addr: ap, Err: err})
}

// running is what check knows of the ringproxy serving this config's
// admin socket.
type running struct {
	sock    string
	pid     int              // 0: none answers there
	listens []netip.AddrPort // the TCP addresses it listens on
	why     string           // why check cannot tell what it holds; "" when it can
}

func (r *running) known() bool { return r.why == "" }

// holds says whether the running ringproxy listens on ap or an address
// overlapping it: a reload takes ap over, or binds beside its own. Its
// stats listener on a wildcard is dual-stack, listed as "[::]" (tcp6).
func (r *running) holds(ap netip.AddrPort) bool {
	for _, a := range r.listens {
		dual := a.Addr() == netip.IPv6Unspecified() && a.Port() == ap.Port()
		if dual || session.Overlaps(a, ap) {
			return true
		}
	}
	return false
}

func (r *running) heldNote() string {
	return fmt.Sprintf("held by this config's running ringproxy (pid %d, admin socket %s): a reload takes it over", r.pid, r.sock)
}

// findRunning finds the process serving the admin socket at sock and the
// addresses it listens on.
func findRunning(sock string) *running {
	r := &running{sock: sock}
	if sock == "" {
		r.why = "the config names no [admin] socket, by which check would know its running ringproxy"
		return r
	}
	pid, err := socketPeer(sock)
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return r // nothing runs there: whatever holds an address is another process
	case err != nil:
		r.why = fmt.Sprintf("admin socket %s: %v", sock, err)
		return r
	}
	r.pid = pid
	if r.listens, err = listeningAddrs(pid); err != nil {
		r.why = fmt.Sprintf("the sockets of pid %d (admin socket %s): %v", pid, sock, err)
	}
	return r
}

// socketPeer connects to the Unix socket at path and returns the pid of
// the process that accepted (SO_PEERCRED). The admin socket takes a
// connection that sends nothing as it takes `ctl`'s: it reads EOF and
// closes.
func socketPeer(path string) (int, error) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return int(cred.Pid), nil
}

// listeningAddrs returns the TCP addresses process pid listens on: its
// socket inodes (/proc/PID/fd) matched with the listening sockets of its
// network namespace (/proc/PID/net/tcp and tcp6).
func listeningAddrs(pid int) ([]netip.AddrPort, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	inodes, err := socketInodes(filepath.Join(dir, "fd"))
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(dir, "net", table))
		if errors.Is(err, os.ErrNotExist) && table == "tcp6" {
			continue // a kernel without IPv6
		}
		if err != nil {
			return nil, err
		}
		listens, err := parseListening(f, inodes)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		out = append(out, listens...)
	}
	return out, nil
}

// socketInodes reads the inodes of the sockets in a /proc/PID/fd
// directory; fds that close meanwhile are skipped.
func socketInodes(fdDir string) (map[string]bool, error) {
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	return inodes, nil
}

// tcpListen is the state /proc/net/tcp gives a listening socket.
const tcpListen = "0A"

// parseListening reads a /proc/net/tcp or tcp6 table and returns the
// local addresses of the listening sockets among inodes. A line is
// "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout
// inode ...", addresses in hex as the kernel holds them.
func parseListening(f *os.File, inodes map[string]bool) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != tcpListen || !inodes[fields[9]] {
			continue
		}
		ap, err := parseProcAddr(fields[1])
		if err != nil {
			return nil, err
		}
		out = append(out, ap)
	}
	return out, sc.Err()
}

// parseProcAddr parses "0100007F:1F90" (127.0.0.1:8080) or its IPv6
// form: the address as 32-bit words in the kernel's byte order, the port
// in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	host, port, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(host)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	// Each word was printed as a number: undo that to get the bytes.
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}
