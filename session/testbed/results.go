package testbed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"sync"
	"time"
)

// Result is what a backend received on one connection.
type Result struct {
	Bytes  int64  // bytes received before EOF or error
	SHA256 string // hex SHA-256 of those bytes
	Err    error  // nil when the peer half-closed cleanly (read EOF)
}

// results collects per-connection Results and lets a test wait for a given
// number of them, because backends finish connections asynchronously.
type results struct {
	mu      sync.Mutex
	list    []Result
	changed chan struct{} // closed and replaced on every add
}

func newResults() *results {
	return &results{changed: make(chan struct{})}
}

func (r *results) add(res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, res)
	close(r.changed)
	r.changed = make(chan struct{})
}

// wait returns the first n results in completion order, or an error with
// whatever arrived if fewer than n finished within timeout.
func (r *results) wait(n int, timeout time.Duration) ([]Result, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, changed := len(r.list), r.changed
		if got >= n {
			out := append([]Result(nil), r.list[:n]...)
			r.mu.Unlock()
			return out, nil
		}
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			r.mu.Lock()
			out := append([]Result(nil), r.list...)
			r.mu.Unlock()
			return out, fmt.Errorf("wait for %d finished connections: only %d after %v", n, len(out), timeout)
		}
	}
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// SHA256Hex is the hex SHA-256 of b, for comparing against Result.SHA256.
func SHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
