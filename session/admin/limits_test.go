package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ringproxy/session/testbed"
)

// infoValue is the number show info gives for key, or -1.
func infoValue(info, key string) int {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `: (\d+)$`).FindStringSubmatch(info)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// An accept that fails with EMFILE (the fd table full in a connection
// flood) is retried: the client that waited through it is answered once
// fds are free again, the burst is counted and logged at its start and
// end only, and the socket goes on serving. The old loop returned at the first error and
// left the socket listening but never accepting: `ctl show info` hung.
func TestAcceptErrorBurstKeepsServing(t *testing.T) {
	logs := &testbed.LogBuffer{}
	s, path := listen(t, twoServerProxy(t), slog.New(slog.NewTextHandler(logs, nil)))
	client := testbed.PresocketUnix(t, path)
	release := testbed.ExhaustFDs(t, 0)
	if err := client.Connect(); err != nil {
		t.Fatal(err)
	}
	testbed.WaitFor(t, 3*time.Second, func() bool { return s.Counts().AcceptErrors >= 3 }, "accepts to fail and be retried")
	release()

	c, err := client.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "show info human\n"); err != nil {
		t.Fatalf("send show info: %v", err)
	}
	c.(*net.UnixConn).CloseWrite()
	answer, err := io.ReadAll(c)
	if err != nil || !strings.Contains(string(answer), "engine: uring") {
		t.Fatalf("the client that waited through EMFILE got %q, %v: the socket stopped accepting", answer, err)
	}
	if n := infoValue(string(answer), "admin_accept_errors"); n < 3 {
		t.Errorf("show info counts %d admin accept errors, want the burst's (>= 3):\n%s", n, answer)
	}
	if out := ctl(t, path, "show info human"); !strings.Contains(out, "engine: uring") {
		t.Errorf("a fresh show info after the burst: %q", out)
	}
	// Usually one burst; an fd that another goroutine of the test process
	// frees meanwhile can let one accept through and split it in two.
	errs := s.Counts().AcceptErrors
	warns := logs.Lines("level=WARN", "admin socket: accept failed")
	recoveries := logs.Lines("level=INFO", "admin socket accepting again after")
	if len(warns) < 1 || len(warns) != len(recoveries) || uint64(len(warns)) >= errs || !strings.Contains(warns[0], "too many open files") {
		t.Errorf("%d accept errors, %d warnings, %d lines saying it accepts again; want a warning naming EMFILE and a recovery line per burst, not a line per error:\n%s",
			errs, len(warns), len(recoveries), logs)
	}
}

// readAll reads c until it closes or timeout passes; timedOut says which.
func readAll(c net.Conn, timeout time.Duration) (got string, timedOut bool) {
	c.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	return string(b), errors.Is(err, os.ErrDeadlineExceeded)
}

// Past MaxConns connections a new one is answered with an error line and
// closed at once; idle ones are closed after idleTimeout, so a client
// that opens hundreds and sits on them holds no fd for long, and the
// socket serves again afterwards.
func TestConnectionLimitAndIdleTimeout(t *testing.T) {
	defer func(d time.Duration) { idleTimeout = d }(idleTimeout)
	idleTimeout = time.Second
	s, path := listen(t, twoServerProxy(t), nil)
	const extra = 10 // then one more through Send
	var conns []net.Conn
	for range MaxConns + extra {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	opened := time.Now()
	if out, err := Send(path, "show info"); out != string(refusal) || err != nil {
		t.Errorf("ctl at the limit: %q, %v; want the refusal line", out, err)
	}
	type outcome struct {
		got      string
		timedOut bool
		after    time.Duration
	}
	outcomes := make([]outcome, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			got, timedOut := readAll(c, idleTimeout+3*time.Second)
			outcomes[i] = outcome{got, timedOut, time.Since(opened)}
		})
	}
	wg.Wait()
	refused, idleClosed := 0, 0
	for i, o := range outcomes {
		switch {
		case o.got == "error: too many admin connections\n":
			refused++
		case o.got == "" && !o.timedOut && o.after >= idleTimeout*8/10:
			idleClosed++
		default:
			t.Errorf("connection %d: got %q after %v (timed out: %v); want the refusal line or a close after the %v idle timeout",
				i, o.got, o.after.Round(time.Millisecond), o.timedOut, idleTimeout)
		}
	}
	if refused != extra || idleClosed != MaxConns {
		t.Errorf("%d refused and %d closed when idle; want %d and %d", refused, idleClosed, extra, MaxConns)
	}
	out := ctl(t, path, "show info human")
	if n := infoValue(out, "admin_refused"); n != extra+1 {
		t.Errorf("show info counts %d refused admin connections, want %d:\n%s", n, extra+1, out)
	}
	if n := s.Counts().Open; n != 0 {
		t.Errorf("%d admin connections still counted open after every client left", n)
	}
}

// A line longer than the socket reads is answered with an error saying
// the limit, rather than the connection being reset without a word; a
// command of exactly the limit is still read.
func TestOverlongLineIsAnswered(t *testing.T) {
	_, path := listen(t, twoServerProxy(t), nil)
	send := func(b []byte) string {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() { // a write the server stops reading must not hold the test
			c.Write(b)
			c.(*net.UnixConn).CloseWrite()
		}()
		got, timedOut := readAll(c, 5*time.Second)
		if timedOut {
			t.Fatalf("no answer to a %d-byte line, got %q", len(b), got)
		}
		return got
	}
	long := bytes.Repeat([]byte("x"), 70<<10)
	want := fmt.Sprintf("error: command line too long (max %d bytes)\n", maxCommand)
	if got := send(long); got != want {
		t.Errorf("70 KiB without a newline: got %q, want %q", got, want)
	}
	atLimit := append(bytes.Repeat([]byte("x"), maxCommand), '\n')
	if got := send(atLimit); !strings.HasPrefix(got, "error: unknown command") {
		t.Errorf("a %d-byte command: got %.60q..., want it read as a command", maxCommand, got)
	}
}
