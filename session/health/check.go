package health

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"
)

// prober runs one server's active checks. One check runs at a time per
// server, so buf is reused and a server costs one read buffer, not one per
// check.
type prober struct {
	spec  Spec
	addr  string      // dial address: the check's endpoint, "127.0.0.1:8008"
	req   []byte      // http: the request
	steps []probeStep // tcp and expect: the conversation once connected
	buf   []byte      // MaxRead bytes, when something is read
}

// probeStep is a step and the phase its failure reasons start with: the
// admin socket tells L7TOUT from L7RSP by it (failedCheck).
type probeStep struct {
	Step
	phase   string // "step 3 expect"; the expect kind's shorthand: "send" or "read", as before steps
	noMatch string // the phase when the answer filled the buffer without a match
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
		p.steps = []probeStep{
			{Step: Step{Action: SendBytes, Data: spec.Send}, phase: "send"},
			{Step: Step{Action: ExpectBytes, Data: spec.Expect}, phase: "read", noMatch: "expect"},
		}
	case TCP:
		for i, st := range spec.Steps {
			verb := "expect"
			if st.Action == SendBytes {
				verb = "send"
			}
			phase := fmt.Sprintf("step %d %s", i+1, verb)
			p.steps = append(p.steps, probeStep{Step: st, phase: phase, noMatch: phase})
		}
	}
	reads := func(st probeStep) bool { return st.Action != SendBytes }
	if spec.Kind == HTTP || slices.ContainsFunc(p.steps, reads) {
		p.buf = make([]byte, MaxRead)
	}
	return p
}

// errStopped is the result of a check cut short by Monitor.Stop; it is
// never recorded.
var errStopped = errors.New("check stopped")

// Probe runs one check of spec against addr, as a Monitor does, and
// returns why it failed (`step 6 expect: timeout after 200ms, got ...,
// want "role:master"`), nil if it passed. Cancelling ctx ends it.
func Probe(ctx context.Context, spec Spec, addr netip.AddrPort) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	err := newProber(spec, addr).check(ctx)
	if err == errStopped {
		return ctx.Err()
	}
	return err
}

// check runs one check with the spec's timeout covering all of it, and
// returns a short reason on failure ("connect: connection refused",
// "http status 503, want 200"). Cancelling ctx ends it at once.
func (p *prober) check(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(cctx, "tcp", p.addr)
	if err != nil {
		return p.ioErr(ctx, "connect", err, p.spec.Timeout)
	}
	conn := c.(*net.TCPConn)
	// Reset rather than close gracefully: the checker hangs up first, and a
	// FIN would leave a TIME_WAIT socket behind for every check (HAProxy
	// does the same).
	defer conn.Close()
	defer conn.SetLinger(0)
	if p.spec.Kind == TCP && len(p.steps) == 0 {
		return nil
	}
	deadline, _ := cctx.Deadline()
	conn.SetDeadline(deadline)
	// Stop cancels ctx; a past deadline wakes a blocked read or write.
	unhook := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer unhook()
	if p.spec.Kind == HTTP {
		if _, err := conn.Write(p.req); err != nil {
			return p.ioErr(ctx, "send", err, p.spec.Timeout)
		}
		return p.readHTTP(ctx, conn)
	}
	return p.converse(ctx, conn, deadline)
}

// converse runs the steps in order, each within its own timeout and all
// within the check's deadline; the first failure ends the check.
func (p *prober) converse(ctx context.Context, conn net.Conn, deadline time.Time) error {
	n := 0 // the answer so far: buf[:n]
	for i := range p.steps {
		st := &p.steps[i]
		end, timeout := deadline, p.spec.Timeout
		if st.Timeout > 0 {
			if e := time.Now().Add(st.Timeout); e.Before(deadline) {
				end, timeout = e, st.Timeout
			}
		}
		conn.SetDeadline(end)
		if ctx.Err() != nil {
			return errStopped // Stop's past deadline may have come before ours
		}
		if st.Action == SendBytes {
			n = 0 // what came before answered an earlier question
			if _, err := conn.Write(st.Data); err != nil {
				return p.ioErr(ctx, st.phase, err, timeout)
			}
			continue
		}
		var err error
		if n, err = p.expect(ctx, conn, st, n, timeout); err != nil {
			return err
		}
	}
	return nil
}

// expect reads more of the answer, buf[:n] so far, until st matches it,
// the server hangs up, the deadline passes or the buffer is full. It
// returns the answer's new length: a next expect looks at it too.
func (p *prober) expect(ctx context.Context, conn io.Reader, st *probeStep, n int, timeout time.Duration) (int, error) {
	buf := p.buf
	if st.matches(buf[:n], 0) {
		return n, nil
	}
	for {
		if n == len(buf) {
			return n, fmt.Errorf("%s: no match in the first %d bytes, got %s, want %s", st.noMatch, n, st.excerpt(buf[:n]), st.want())
		}
		// A substring can only newly match in the new bytes and the
		// len(Data)-1 before them.
		from := max(n-len(st.Data)+1, 0)
		m, err := conn.Read(buf[n:])
		n += m
		if m > 0 && st.matches(buf[:n], from) {
			return n, nil
		}
		if err != nil {
			err = p.ioErr(ctx, st.phase, err, timeout)
			if err == errStopped {
				return n, err
			}
			return n, fmt.Errorf("%w, got %s, want %s", err, st.excerpt(buf[:n]), st.want())
		}
	}
}

// matches says whether the answer satisfies an expect step; a substring
// is looked for from byte from on. It allocates nothing.
func (st *Step) matches(answer []byte, from int) bool {
	if st.Action == ExpectRegexp {
		return st.Regexp.Match(answer)
	}
	return bytes.Contains(answer[from:], st.Data)
}

// want names what an expect step looks for, for a failure reason.
func (st *Step) want() string {
	switch {
	case st.Action == ExpectRegexp:
		return fmt.Sprintf("regexp %q", st.Regexp.String())
	case st.Hex:
		return "hex " + hex.EncodeToString(st.Data)
	}
	return fmt.Sprintf("%q", st.Data)
}

// excerpt shows the start of an answer as the step was configured: hex
// for a hex step, quoted text otherwise.
func (st *Step) excerpt(b []byte) string {
	if !st.Hex {
		return excerpt(b)
	}
	const max = 32
	if len(b) > max {
		return "hex " + hex.EncodeToString(b[:max]) + "..."
	}
	return "hex " + hex.EncodeToString(b)
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
			return p.ioErr(ctx, what, err, p.spec.Timeout)
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

// ioErr turns a dial or I/O error into a short reason for a log line,
// "PHASE: WHAT"; timeout is the one a deadline error means.
func (p *prober) ioErr(ctx context.Context, what string, err error, timeout time.Duration) error {
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
		return fmt.Errorf("%s: timeout after %v", what, timeout)
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
