package testbed

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Transfer describes both directions of one client connection.
type Transfer struct {
	Sent           int64
	SentSHA256     string // hex
	Received       int64
	ReceivedSHA256 string // hex
	Duration       time.Duration
}

// IntegrityResult is the outcome of IntegrityRun.
type IntegrityResult struct {
	Transfer
	// FirstDiff is the offset of the first received byte that differs from
	// the byte sent at that offset (bytes beyond what was sent count as
	// different), or -1 if every received byte matched. A short but
	// otherwise correct echo has FirstDiff -1 and Received < Sent.
	FirstDiff int64
}

// writerGrace is how long IntegrityRun lets the writer go on after the peer
// has finished sending. A correct echo has already consumed everything by
// then; anything else is a failure and must not hang until ctx expires.
const writerGrace = 2 * time.Second

// integrityTimeout bounds IntegrityMany so a stuck proxy fails the test
// instead of hanging it.
const integrityTimeout = 2 * time.Minute

// IntegrityRun dials addr, streams size bytes of pseudo-random data derived
// from seed in random-sized writes (1 byte to 64 KiB) and half-closes, while
// concurrently reading everything back until EOF. It expects an echo and
// returns an error unless exactly the sent bytes came back. Data is
// generated, hashed and compared as it streams, so size can be large.
// Duration runs from connect until both directions are done.
func IntegrityRun(ctx context.Context, addr netip.AddrPort, size int, seed int64) (IntegrityResult, error) {
	res := IntegrityResult{FirstDiff: -1}
	c, err := dialTCP(ctx, addr)
	if err != nil {
		return res, fmt.Errorf("integrity run (seed %d): %w", seed, err)
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	start := time.Now()

	var sent Transfer
	wdone := make(chan error, 1)
	go func() {
		var err error
		sent.Sent, sent.SentSHA256, err = writeStream(c, size, seed)
		if err == nil {
			err = c.CloseWrite()
		}
		wdone <- err
	}()

	v := newVerifier(size, seed)
	_, rerr := io.Copy(v, c)
	werr, stalled := awaitWriter(wdone, c)

	res.Sent, res.SentSHA256 = sent.Sent, sent.SentSHA256
	res.Received, res.ReceivedSHA256 = v.total, hexSum(v.h)
	res.FirstDiff = v.firstDiff
	res.Duration = time.Since(start)
	return res, integrityError(ctx, addr, seed, size, res, werr, rerr, stalled)
}

// awaitWriter waits for the writer goroutine. If it does not finish within
// writerGrace the connection is closed to unblock it; stalled reports that.
func awaitWriter(wdone <-chan error, c net.Conn) (err error, stalled bool) {
	t := time.NewTimer(writerGrace)
	defer t.Stop()
	select {
	case err = <-wdone:
		return err, false
	case <-t.C:
		c.Close()
		return <-wdone, true
	}
}

// integrityError explains everything that went wrong in one message, with
// the seed so the exact byte stream can be reproduced.
func integrityError(ctx context.Context, addr netip.AddrPort, seed int64, size int, res IntegrityResult, werr, rerr error, stalled bool) error {
	var problems []string
	if ctx.Err() != nil {
		problems = append(problems, ctx.Err().Error())
	}
	switch {
	case stalled:
		problems = append(problems, fmt.Sprintf("peer stopped sending but did not read the rest within %v", writerGrace))
	case werr != nil && ctx.Err() == nil:
		problems = append(problems, fmt.Sprintf("write: %v", werr))
	}
	if rerr != nil && ctx.Err() == nil && !stalled {
		problems = append(problems, fmt.Sprintf("read: %v", rerr))
	}
	if res.Sent != int64(size) || res.Received != res.Sent || res.FirstDiff >= 0 || res.SentSHA256 != res.ReceivedSHA256 {
		problems = append(problems, fmt.Sprintf("sent %d of %d bytes, received %d bytes, first difference at offset %d (sha256 sent %.16s…, received %.16s…)",
			res.Sent, size, res.Received, res.FirstDiff, res.SentSHA256, res.ReceivedSHA256))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("integrity run to %s (seed %d): %s", addr, seed, strings.Join(problems, "; "))
}

// IntegrityMany runs conns IntegrityRuns against addr concurrently (seeds 1
// to conns), each sending size bytes, and fails t for every connection that
// did not get its bytes back intact. It returns the bytes sent in total (each
// also came back) and the wall time, so callers can log throughput.
func IntegrityMany(t testing.TB, addr netip.AddrPort, conns, size int) (total int64, elapsed time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), integrityTimeout)
	defer cancel()
	results := make([]IntegrityResult, conns)
	errs := make([]error, conns)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { results[i], errs[i] = IntegrityRun(ctx, addr, size, int64(i+1)) })
	}
	wg.Wait()
	elapsed = time.Since(start)
	for i, err := range errs {
		total += results[i].Sent
		if err != nil {
			t.Errorf("connection %d of %d: %v", i+1, conns, err)
		}
	}
	return total, elapsed
}

// ReceiveThenSend is the client for StartServerClosesFirst: it dials addr,
// reads until the server half-closes, then sends size bytes derived from
// seed, half-closes and closes. Compare Sent/SentSHA256 with the backend's
// Results to check that the proxy still forwarded them.
func ReceiveThenSend(ctx context.Context, addr netip.AddrPort, size int, seed int64) (Transfer, error) {
	var tr Transfer
	c, err := dialTCP(ctx, addr)
	if err != nil {
		return tr, fmt.Errorf("receive then send: %w", err)
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	start := time.Now()

	h := sha256.New()
	tr.Received, err = io.Copy(h, c)
	tr.ReceivedSHA256 = hexSum(h)
	if err != nil {
		return tr, fmt.Errorf("receive then send to %s: read after %d bytes: %w", addr, tr.Received, err)
	}
	tr.Sent, tr.SentSHA256, err = writeStream(c, size, seed)
	if err != nil {
		return tr, fmt.Errorf("receive then send to %s: write after %d of %d bytes: %w", addr, tr.Sent, size, err)
	}
	if err := c.CloseWrite(); err != nil {
		return tr, fmt.Errorf("receive then send to %s: half-close: %w", addr, err)
	}
	tr.Duration = time.Since(start)
	return tr, nil
}

// DialExpectClose dials addr, sends nothing and measures how long the peer
// takes to close the connection (EOF or ECONNRESET; a reset that beats the
// dial's own check of the connection counts as a close at once). Data the
// peer sends meanwhile is discarded. It fails if the connection is still
// open after within.
func DialExpectClose(addr netip.AddrPort, within time.Duration) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr.String(), within)
	if errors.Is(err, syscall.ECONNRESET) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("expect close: %w", err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(within))
	_, err = io.Copy(io.Discard, c)
	took := time.Since(start)
	switch {
	case err == nil || errors.Is(err, syscall.ECONNRESET):
		return took, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return took, fmt.Errorf("expect %s to close an idle connection: still open after %v", addr, within)
	default:
		return took, fmt.Errorf("expect %s to close: read: %w", addr, err)
	}
}

// ReadLine dials addr, reads one line (without its line ending) and closes;
// it is the client for StartNamed.
func ReadLine(addr netip.AddrPort, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr.String(), timeout)
	if err != nil {
		return "", fmt.Errorf("read line: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read line from %s: %w (got %q)", addr, err, line)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// WaitFor polls cond every few milliseconds and fails the test if it is not
// true within timeout; msg says what was awaited. Call it from the test
// goroutine, since it may call t.Fatalf.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dialTCP(ctx context.Context, addr netip.AddrPort) (*net.TCPConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}
