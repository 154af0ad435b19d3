package admin

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ringproxy/session/testbed"
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines are the log lines that contain every one of words.
func (l *logBuffer) lines(words ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		all := line != ""
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

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
// fds are free again, the burst is logged once and counted, and the
// socket goes on serving. The old loop returned at the first error and
// left the socket listening but never accepting: `ctl show info` hung.
func TestAcceptErrorBurstKeepsServing(t *testing.T) {
	logs := &logBuffer{}
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
	if _, err := io.WriteString(c, "show info\n"); err != nil {
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
	if out := ctl(t, path, "show info"); !strings.Contains(out, "engine: uring") {
		t.Errorf("a fresh show info after the burst: %q", out)
	}
	if w := logs.lines("level=WARN", "admin socket"); len(w) != 1 || !strings.Contains(w[0], "too many open files") {
		t.Errorf("want one warning naming the error for the whole burst, got %d:\n%s", len(w), logs)
	}
	if i := logs.lines("level=INFO", "admin socket accepting again after"); len(i) != 1 {
		t.Errorf("want one line saying the socket accepts again, got %d:\n%s", len(i), logs)
	}
}
