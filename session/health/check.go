package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// prober runs one server's active checks. One check runs at a time per
// server, so buf is reused and a server costs one read buffer, not one per
// check.
type prober struct {
	spec Spec
	addr string // dial address, "127.0.0.1:8080"
	req  []byte // http: the request; expect: spec.Send
	buf  []byte // MaxRead bytes
}

func newProber(spec Spec, addr netip.AddrPort) *prober {
	p := &prober{spec: spec, addr: addr.String()}
	switch spec.Kind {
	case HTTP:
		host := spec.Host
		if host == "" {
			host = p.addr
		}
		// Connection: close and no body: we read the status line and headers
		// and hang up, so the server must not wait for a next request.
		p.req = []byte("GET " + spec.Path + " HTTP/1.1\r\nHost: " + host +
			"\r\nUser-Agent: ringproxy-health\r\nAccept: */*\r\nConnection: close\r\n\r\n")
	case Expect:
		p.req = spec.Send
	}
	if spec.Kind != TCP {
		p.buf = make([]byte, MaxRead)
	}
	return p
}

// errStopped is the result of a check cut short by Monitor.Stop; it is
// never recorded.
var errStopped = errors.New("check stopped")

// check runs one check with the spec's timeout covering all of it, and
// returns a short reason on failure ("connect: connection refused",
// "http status 503, want 200"). Cancelling ctx ends it at once.
func (p *prober) check(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(cctx, "tcp", p.addr)
	if err != nil {
		return p.ioErr(ctx, "connect", err)
	}
	conn := c.(*net.TCPConn)
	// Reset rather than close gracefully: the checker hangs up first, and a
	// FIN would leave a TIME_WAIT socket behind for every check (HAProxy
	// does the same).
	defer conn.Close()
	defer conn.SetLinger(0)
	if p.spec.Kind == TCP {
		return nil
	}
	deadline, _ := cctx.Deadline()
	conn.SetDeadline(deadline)
	// Stop cancels ctx; a past deadline wakes a blocked read or write.
	unhook := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer unhook()
	if _, err := conn.Write(p.req); err != nil {
		return p.ioErr(ctx, "send", err)
	}
	if p.spec.Kind == HTTP {
		return p.readHTTP(ctx, conn)
	}
	return p.readExpect(ctx, conn)
}

// readHTTP reads the status line and headers, nothing of the body. It
// fails as soon as what arrived cannot be the expected response.
func (p *prober) readHTTP(ctx context.Context, conn net.Conn) error {
	buf, n, scanned := p.buf, 0, 0
	status := 0
	for {
		m, err := conn.Read(buf[n:])
		n += m
		b := buf[:n]
		if k := min(n, 5); !bytes.Equal(b[:k], []byte("HTTP/")[:k]) {
			return fmt.Errorf("http: response is not HTTP: %s", excerpt(b))
		}
		if status == 0 {
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				status = parseStatus(b[:i])
				if status == 0 {
					return fmt.Errorf("http: bad status line %s", excerpt(b[:i]))
				}
				if status != p.spec.ExpectStatus {
					return fmt.Errorf("http status %d, want %d", status, p.spec.ExpectStatus)
				}
			}
		}
		if status != 0 {
			// The blank line ending the headers; a line may end in "\n" alone.
			from := max(scanned-3, 0)
			if bytes.Contains(b[from:], []byte("\r\n\r\n")) || bytes.Contains(b[from:], []byte("\n\n")) {
				return nil
			}
			scanned = n
		}
		if err != nil {
			what := "read status line"
			if status != 0 {
				what = "read headers"
			}
			return p.ioErr(ctx, what, err)
		}
		if n == len(buf) {
			return fmt.Errorf("http: status line and headers exceed %d bytes", len(buf))
		}
	}
}

// parseStatus returns the status code of an HTTP/1.x status line, 0 if it
// is not one.
func parseStatus(line []byte) int {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return 0
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return 0
	}
	return code
}

// readExpect reads until spec.Expect appears, the server hangs up, the
// deadline passes or MaxRead bytes came without it.
func (p *prober) readExpect(ctx context.Context, conn net.Conn) error {
	want := p.spec.Expect
	buf, n := p.buf, 0
	for {
		m, err := conn.Read(buf[n:])
		// Search only where a new match can be: the new bytes and the
		// len(want)-1 before them.
		from := max(n-len(want)+1, 0)
		n += m
		if bytes.Contains(buf[from:n], want) {
			return nil
		}
		if err != nil {
			err = p.ioErr(ctx, "read", err)
			if err == errStopped {
				return err
			}
			return fmt.Errorf("%w, got %s, want %q", err, excerpt(buf[:n]), want)
		}
		if n == len(buf) {
			return fmt.Errorf("expect: %q not in the first %d bytes", want, n)
		}
	}
}

// localShortage is a check that could not run for want of a resource of
// our own (an fd, memory, a local port): it says nothing about the server
// and is never counted against it.
type localShortage struct{ err error }

func (e *localShortage) Error() string { return e.err.Error() + " (local shortage, not counted)" }
func (e *localShortage) Unwrap() error { return e.err }

// IsLocalShortage says whether err is a failure of our own resources:
// EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL.
func IsLocalShortage(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ioErr turns a dial or I/O error into a short reason for a log line.
func (p *prober) ioErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return errStopped
	}
	if IsLocalShortage(err) {
		var errno syscall.Errno
		errors.As(err, &errno)
		return &localShortage{fmt.Errorf("%s: %v", what, errno)}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: timeout after %v", what, p.spec.Timeout)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: connection closed by server", what)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("%s: %v", what, errno)
	}
	return fmt.Errorf("%s: %v", what, err)
}

// excerpt quotes the start of what a server sent, for an error message.
func excerpt(b []byte) string {
	const max = 64
	if len(b) > max {
		return fmt.Sprintf("%q...", b[:max])
	}
	return fmt.Sprintf("%q", b)
}
