package session

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"sync"
	"sync/atomic"
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
}

// logLine bounds one line; longer lines are cut.
const logLine = 1024

// NewLogSink starts a sink of n lines in flight writing to out.
func NewLogSink(out io.Writer, n int) *LogSink {
	l := &LogSink{out: out, lines: make(chan []byte, n), free: make(chan []byte, n), done: make(chan struct{})}
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

// openSyslog opens the local syslog (/dev/log) for access lines, facility
// daemon, severity info. Tests point it elsewhere.
var openSyslog = func() (io.Writer, error) {
	return syslog.New(syslog.LOG_INFO|syslog.LOG_DAEMON, "ringproxy")
}

func (p *Proxy) openAccessLog() error {
	if !p.cfg.Log.Access {
		return nil
	}
	out := p.accessOut
	if out == nil {
		switch p.cfg.Log.Target {
		case "stderr":
			out = os.Stderr
		case "syslog":
			w, err := openSyslog()
			if err != nil {
				return fmt.Errorf("access log to syslog: %w", err)
			}
			out = w
		default:
			out = os.Stdout
		}
	}
	p.access = NewLogSink(out, accessLines)
	return nil
}
