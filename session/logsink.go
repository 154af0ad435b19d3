package session

import (
	"io"
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
