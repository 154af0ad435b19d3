package session

import (
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LogSink carries log lines from the worker loops to a writer without
// ever blocking them: lines go into a bounded queue of preallocated
// buffers, a goroutine of its own writes them, and when the queue is full
// (a slow journald, a stuck pipe) the line is dropped and counted.
type LogSink struct {
	out     io.Writer
	lines   chan []byte // written by the sink's goroutine
	free    chan []byte // empty buffers for the next lines
	dropped atomic.Uint64
	stop    sync.Once
	done    chan struct{}
	owned   io.Closer // closed once the last line is written; nil: out is not the sink's
}

// logLine bounds one line; longer lines are cut.
const logLine = 1024

// NewLogSink starts a sink of n lines in flight writing to out.
func NewLogSink(out io.Writer, n int) *LogSink { return newLogSink(out, n, nil) }

// newLogSink starts a sink that closes owned, if not nil, after its last
// line.
func newLogSink(out io.Writer, n int, owned io.Closer) *LogSink {
	l := &LogSink{out: out, lines: make(chan []byte, n), free: make(chan []byte, n), done: make(chan struct{}), owned: owned}
	for i := 0; i < n; i++ {
		l.free <- make([]byte, 0, logLine)
	}
	go l.run()
	return l
}

func (l *LogSink) run() {
	defer close(l.done)
	for b := range l.lines {
		_, _ = l.out.Write(b)
		l.free <- b[:0]
	}
	if l.owned != nil {
		l.owned.Close()
	}
}

// buffer takes an empty line buffer, or nil when the queue is full.
func (l *LogSink) buffer() []byte {
	select {
	case b := <-l.free:
		return b
	default:
		l.dropped.Add(1)
		return nil
	}
}

// submit queues a line taken from buffer.
func (l *LogSink) submit(b []byte) {
	l.lines <- b // cannot block: b came from free, so lines has room
}

// Write queues a copy of p as one line (for log/slog handlers). It never
// blocks and never fails: a line that does not fit is counted as dropped.
func (l *LogSink) Write(p []byte) (int, error) {
	b := l.buffer()
	if b == nil {
		return len(p), nil
	}
	if len(p) > logLine {
		p = append(p[:logLine-1:logLine-1], '\n')
	}
	l.submit(append(b, p...))
	return len(p), nil
}

// Dropped counts the lines lost because the queue was full.
func (l *LogSink) Dropped() uint64 { return l.dropped.Load() }

// Close writes what is queued and stops the sink. Nothing may be written
// after it.
func (l *LogSink) Close() {
	l.stop.Do(func() { close(l.lines) })
	<-l.done
}

// SetAccessLog sends access lines to out instead of [log].target. Call
// it before Start.
func (p *Proxy) SetAccessLog(out io.Writer) { p.accessOut = out }

// accessLines is how many access lines may wait for the writer.
const accessLines = 4096

// SyslogPath is the local syslog socket that [log] target = "syslog"
// sends access lines to. A variable so that tests can point it elsewhere.
var SyslogPath = "/dev/log"

// DialSyslog connects to the local syslog at SyslogPath, as Start does
// for target = "syslog"; `check` calls it to fail where `run` would.
// The error names the path and the reason: "/dev/log: no such file or
// directory".
func DialSyslog() (io.WriteCloser, error) {
	w := &syslogWriter{path: SyslogPath, pid: os.Getpid()}
	if err := w.connect(); err != nil {
		return nil, err
	}
	return w, nil
}

// syslogWriter sends each Write as one message, facility daemon and
// severity info, tagged ringproxy, in the local format log/syslog uses
// for /dev/log ("<30>Jan  2 15:04:05 ringproxy[PID]: line"), which
// journald and rsyslog parse. log/syslog itself cannot be pointed at
// another path without switching to its network format, whose RFC 3339
// stamp journald does not recognise.
type syslogWriter struct {
	path string
	pid  int
	conn net.Conn
	msg  []byte
}

// connect dials the socket as a datagram socket (journald's, rsyslog's
// default) or else a stream one.
func (w *syslogWriter) connect() error {
	var first error
	for _, network := range []string{"unixgram", "unix"} {
		c, err := net.Dial(network, w.path)
		if err == nil {
			w.conn = c
			return nil
		}
		if first == nil {
			first = err
		}
	}
	var errno syscall.Errno
	if errors.As(first, &errno) {
		return fmt.Errorf("%s: %w", w.path, errno)
	}
	return fmt.Errorf("%s: %w", w.path, first)
}

// Write sends p as one message. A syslog daemon that restarted has a new
// socket: the write is tried once more on a new connection.
func (w *syslogWriter) Write(p []byte) (int, error) {
	w.msg = fmt.Appendf(w.msg[:0], "<%d>%s ringproxy[%d]: ", syslog.LOG_INFO|syslog.LOG_DAEMON, time.Now().Format(time.Stamp), w.pid)
	w.msg = append(w.msg, p...)
	if len(p) == 0 || p[len(p)-1] != '\n' {
		w.msg = append(w.msg, '\n')
	}
	if w.conn != nil {
		if _, err := w.conn.Write(w.msg); err == nil {
			return len(p), nil
		}
		w.conn.Close()
		w.conn = nil
	}
	if err := w.connect(); err != nil {
		return 0, err
	}
	if _, err := w.conn.Write(w.msg); err != nil {
		return 0, fmt.Errorf("%s: %w", w.path, err)
	}
	return len(p), nil
}

func (w *syslogWriter) Close() error {
	if w.conn == nil {
		return nil
	}
	return w.conn.Close()
}

func (p *Proxy) openAccessLog() error {
	if !p.cfg.Log.Access {
		return nil
	}
	out := p.accessOut
	var owned io.Closer
	if out == nil {
		switch p.cfg.Log.Target {
		case "stderr":
			out = os.Stderr
		case "syslog":
			w, err := DialSyslog()
			if err != nil {
				return fmt.Errorf("access log to syslog: %w", err)
			}
			out, owned = w, w // each generation has its own connection
		default:
			out = os.Stdout
		}
	}
	p.access = newLogSink(out, accessLines, owned)
	return nil
}
