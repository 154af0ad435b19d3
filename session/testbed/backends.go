package testbed

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// Echo writes every byte it receives back to the client.
type Echo struct{ *Server }

// StartEcho starts an echo backend. When the client half-closes, the echo
// finishes writing back everything it read, half-closes its own side and
// then closes, so a client can read to EOF and know it saw every byte.
func StartEcho(t testing.TB) *Echo {
	t.Helper()
	return &Echo{StartFunc(t, EchoConn)}
}

// EchoConn writes back everything it reads from c and half-closes after
// the client's FIN: the Echo backend's handler, for servers of a test's own.
func EchoConn(c *net.TCPConn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF {
			// Everything read has been written back by now; FIN tells the
			// client the echo is complete.
			c.CloseWrite()
			return
		}
		if err != nil {
			return
		}
	}
}

// Hold is an echo backend meant for concurrency-limit tests. MaxLive is
// the largest number of connections it held at once whose client had not
// yet half-closed. That is exact against a proxy's session count: a proxy
// frees a session only after forwarding the client's FIN, which Hold has
// read by then. MaxActive (from Server) also counts connections whose
// handler is still finishing, so it may briefly run one or two above.
type Hold struct {
	*Server
	live, maxLive atomic.Int64
}

// StartHold starts a Hold backend.
func StartHold(t testing.TB) *Hold {
	t.Helper()
	h := &Hold{}
	h.Server = StartFunc(t, h.serve)
	return h
}

// MaxLive is the most connections held at once before their client's FIN.
func (h *Hold) MaxLive() int64 { return h.maxLive.Load() }

func (h *Hold) serve(c *net.TCPConn) {
	n := h.live.Add(1)
	for {
		m := h.maxLive.Load()
		if n <= m || h.maxLive.CompareAndSwap(m, n) {
			break
		}
	}
	counted := true
	defer func() {
		if counted {
			h.live.Add(-1)
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			h.live.Add(-1) // before answering the FIN: the proxy waits for ours
			counted = false
			if err == io.EOF {
				c.CloseWrite()
			}
			return
		}
	}
}

// Named identifies itself, so a test can tell which backend served a
// connection.
type Named struct {
	*Server
	Name string
}

// StartNamed starts a backend that writes name+"\n" as soon as it accepts,
// then reads until EOF or error and closes. Read it with ReadLine.
func StartNamed(t testing.TB, name string) *Named {
	t.Helper()
	n := &Named{Server: newServer(t), Name: name}
	n.start(n.serveRaw)
	return n
}

// StartNamedHTTP starts a backend that answers one HTTP/1.x request per
// connection with "200 OK", "Connection: close" and body name+"\n".
func StartNamedHTTP(t testing.TB, name string) *Named {
	t.Helper()
	n := &Named{Server: newServer(t), Name: name}
	n.start(n.serveHTTP)
	return n
}

func (n *Named) serveRaw(c *net.TCPConn) {
	if _, err := io.WriteString(c, n.Name+"\n"); err != nil {
		return
	}
	io.Copy(io.Discard, c)
}

func (n *Named) serveHTTP(c *net.TCPConn) {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	io.Copy(io.Discard, req.Body)
	req.Body.Close()
	body := n.Name + "\n"
	_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	if err != nil {
		return
	}
	c.CloseWrite()
	// Lingering close: closing with unread bytes (a pipelined request) would
	// send RST, which can destroy the response before the client reads it.
	c.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, c)
}

// Silent accepts and never writes. Connections stay open until the peer
// closes them or the test ends.
type Silent struct {
	*Server
	closed atomic.Int64
}

// StartSilent starts a Silent backend.
func StartSilent(t testing.TB) *Silent {
	t.Helper()
	s := &Silent{Server: newServer(t)}
	s.start(s.serve)
	return s
}

// Closed is the number of connections the peer closed (read returned EOF or
// an error); connections closed by the backend's own shutdown do not count.
func (s *Silent) Closed() int64 { return s.closed.Load() }

func (s *Silent) serve(c *net.TCPConn) {
	io.Copy(io.Discard, c)
	if !s.closing() {
		s.closed.Add(1)
	}
}

// Sink reads everything and reports what it got.
type Sink struct {
	*Server
	res *results
}

// StartSink starts a backend that reads each connection to EOF, hashing as
// it goes. On a clean half-close it writes back "<nbytes> <hex sha256>\n"
// and closes. Results gives the same numbers to the test directly.
func StartSink(t testing.TB) *Sink {
	t.Helper()
	k := &Sink{Server: newServer(t), res: newResults()}
	k.start(k.serve)
	return k
}

// Results waits until n connections have finished reading and returns their
// results in completion order.
func (k *Sink) Results(n int, timeout time.Duration) ([]Result, error) {
	return k.res.wait(n, timeout)
}

func (k *Sink) serve(c *net.TCPConn) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	res := Result{Bytes: n, SHA256: hexSum(h), Err: err}
	k.res.add(res)
	if err == nil {
		fmt.Fprintf(c, "%d %s\n", res.Bytes, res.SHA256)
	}
}

// ClosesFirst sends its payload and half-closes before the client says
// anything, then keeps reading: it checks that a proxy forwards the client's
// data after the server side has already finished.
type ClosesFirst struct {
	*Server
	Payload []byte
	res     *results
}

// StartServerClosesFirst starts a ClosesFirst backend. On every connection
// it writes payload, half-closes (CloseWrite), reads until EOF recording the
// length and SHA-256 of what it got, then closes.
func StartServerClosesFirst(t testing.TB, payload []byte) *ClosesFirst {
	t.Helper()
	s := &ClosesFirst{Server: newServer(t), Payload: payload, res: newResults()}
	s.start(s.serve)
	return s
}

// Results waits until n connections have finished and returns what the
// backend received on each, in completion order.
func (s *ClosesFirst) Results(n int, timeout time.Duration) ([]Result, error) {
	return s.res.wait(n, timeout)
}

func (s *ClosesFirst) serve(c *net.TCPConn) {
	_, err := c.Write(s.Payload)
	if err == nil {
		err = c.CloseWrite()
	}
	if err != nil {
		s.res.add(Result{SHA256: SHA256Hex(nil), Err: fmt.Errorf("write payload: %w", err)})
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, c)
	s.res.add(Result{Bytes: n, SHA256: hexSum(h), Err: err})
}

// StartEchoOn starts an echo backend on addr ("127.0.0.2:8080"): servers
// a DNS name gives by IP alone share one port on their own loopback
// addresses.
func StartEchoOn(t testing.TB, addr string) *Echo {
	t.Helper()
	s := newServerOn(t, addr)
	s.start(EchoConn)
	return &Echo{s}
}
