package testbed

import (
	"bytes"
	"strings"
	"sync"
)

// LogBuffer collects log lines (or a child's output) from several
// goroutines while a test reads them.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines are the lines that contain every one of words.
func (l *LogBuffer) Lines(words ...string) []string {
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

// Count is how many lines contain every one of words.
func (l *LogBuffer) Count(words ...string) int { return len(l.Lines(words...)) }
