// Package admin serves ringproxy's runtime API on a Unix socket: one
// command per line, a text answer per command, as HAProxy's stats socket
// does. It owns the socket and the command language; it acts only
// through session.Proxy's control methods and never touches a worker.
package admin

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"ringproxy/session"
	"ringproxy/session/ctlnet"
)

// MaxConns is how many admin connections may be open at once (the fd
// budget keeps fds for them). A health script or an operator needs one
// or two; a connection past the limit is answered with an error line and
// closed, so a client that opens hundreds and sits on them holds 32 fds
// at most, and only until idleTimeout.
const MaxConns = session.AdminConns

// maxCommand is the longest command line the socket reads, its newline
// not counted; a longer one is answered with an error and the connection
// closed, since the rest of it cannot be told from the next command.
const maxCommand = 64<<10 - 1

// idleTimeout is how long a connection may take to send its next
// command; then it is closed and its fd given back. A variable so tests
// can wait less.
var idleTimeout = 10 * time.Second // HAProxy's stats timeout

// answerTimeout bounds the write of one answer to a client that does not
// read it.
const answerTimeout = 10 * time.Second

var refusal = []byte("error: too many admin connections\n")

// Server is a listening admin socket. Its accept loop ends only when it
// is closed: ctlnet retries every failed accept, so the socket cannot
// die under a flood while its file still says it listens.
type Server struct {
	ln   *ctlnet.Listener
	path string
	t    Target
	idle time.Duration
	wg   sync.WaitGroup
}

// Target is what the socket acts on.
type Target struct {
	Proxy  func() *session.Proxy // the generation serving now (it changes at a reload)
	Reload func() error          // reloads the config file; nil: reload unsupported
	// Listeners counts the control listeners for show info, by the name
	// /metrics labels them with ("admin", "stats"); nil: this socket alone.
	Listeners func() map[string]ctlnet.Counts
	Log       *slog.Logger // where the socket's own trouble goes (failed accepts, refusals); nil: slog.Default()
}

// Listen opens the socket at path with the given file mode. A socket
// file left by a process that is gone is replaced; one that answers is
// another ringproxy's and is left alone.
func Listen(path string, mode os.FileMode, t Target) (*Server, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: chmod %o: %w", path, mode, err)
	}
	s := &Server{path: path, t: t, idle: idleTimeout}
	s.ln = ctlnet.Wrap(ln, ctlnet.Options{Name: "admin socket", Log: t.Log, MaxConns: MaxConns, Refusal: refusal})
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("admin socket %s: exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s: in use by a running process", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("admin socket %s: remove stale socket: %w", path, err)
	}
	return nil
}

// Close stops listening and removes the socket file.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
	os.Remove(s.path)
}

// Counts returns the socket's connection counts.
func (s *Server) Counts() ctlnet.Counts { return s.ln.Counts() }

// serve accepts until Close; ctlnet's Accept fails for nothing else.
func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.conn(c)
	}
}

// conn serves one client: a command per line, each due within the idle
// timeout of the last answer.
func (s *Server) conn(c net.Conn) {
	defer c.Close()
	r := bufio.NewScanner(c)
	r.Buffer(make([]byte, 0, 4<<10), maxCommand+1)
	for {
		c.SetReadDeadline(time.Now().Add(s.idle))
		if !r.Scan() {
			break
		}
		c.SetWriteDeadline(time.Now().Add(answerTimeout))
		// Several commands on one line, separated by ';', run in turn
		// and answer in turn, each answer followed by an empty line, as
		// HAProxy's CLI does.
		for _, cmd := range strings.Split(r.Text(), ";") {
			if cmd = strings.TrimSpace(cmd); cmd != "" {
				fmt.Fprint(c, s.run(cmd), "\n")
			}
		}
	}
	if errors.Is(r.Err(), bufio.ErrTooLong) {
		c.SetWriteDeadline(time.Now().Add(answerTimeout))
		fmt.Fprintf(c, "error: command line too long (max %d bytes)\n", maxCommand)
	}
}

// run executes one command line: reload and show info, which counts the
// control listeners, here; the rest against the generation serving now.
func (s *Server) run(line string) string {
	f := strings.Fields(line)
	switch {
	case line == "reload":
		return s.reload()
	case match(f, "show", "info"):
		counts := map[string]ctlnet.Counts{"admin": s.Counts()}
		if s.t.Listeners != nil {
			counts = s.t.Listeners()
		}
		return showInfo(s.t.Proxy(), f[2:], counts)
	}
	return Run(s.t.Proxy(), line)
}

// listenerInfo is show info's lines on the control listeners, by name.
func listenerInfo(counts map[string]ctlnet.Counts) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		c := counts[name]
		fmt.Fprintf(&b, "%s_connections: %d\n%s_accept_errors: %d\n%s_refused: %d\n", name, c.Open, name, c.AcceptErrors, name, c.Refused)
	}
	return b.String()
}

// reload runs the process's reload and answers with its outcome.
func (s *Server) reload() string {
	if s.t.Reload == nil {
		return "error: this process has no config file to reload\n"
	}
	if err := s.t.Reload(); err != nil {
		return "error: " + strings.ReplaceAll(err.Error(), "\n", "\n  ") + "\n"
	}
	return "reloaded\n"
}

// showInfo is show info: HAProxy's keys in its order (haproxy.go); or
// with "human" ringproxy's own, the control listeners' counts among
// them. counts are the control listeners' (nil: unknown, from Run).
func showInfo(p *session.Proxy, args []string, counts map[string]ctlnet.Counts) string {
	s := p.Snapshot()
	switch {
	case len(args) == 0:
		return haproxyInfo(s, len(counts))
	case len(args) == 1 && args[0] == "human":
		return humanInfo(s) + listenerInfo(counts)
	}
	return fmt.Sprintf("error: want show info or show info human, got %q\n", strings.Join(args, " "))
}

func humanInfo(s session.Snapshot) string {
	ps := s.Process
	return fmt.Sprintf("engine: %s\nworkers: %d\nuptime_seconds: %.0f\nmaxconn: %d\ncurrent_sessions: %d\nmax_sessions: %d\nsessions_total: %d\ncurrent_queue: %d\nbytes_in: %d\nbytes_out: %d\n",
		ps.Engine, ps.Workers, s.Uptime, ps.MaxConn, ps.CurConns, ps.MaxConns, ps.Accepted, ps.CurQueue, ps.BytesIn, ps.BytesOut)
}

// showStat is show stat: HAProxy's CSV (haproxy.go), optionally for one
// proxy, types and server; or with "human" ringproxy's own lines, routes
// included.
func showStat(p *session.Proxy, args []string) string {
	if len(args) == 1 && args[0] == "human" {
		return humanStat(p.Snapshot())
	}
	f, err := parseStatFilter(args)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return haproxyStat(p.Snapshot(), f)
}

func humanStat(s session.Snapshot) string {
	var b strings.Builder
	b.WriteString("# proxy,server,status,weight,current_sessions,sessions_total,bytes_in,bytes_out,connect_failures\n")
	for _, f := range s.Frontends {
		fmt.Fprintf(&b, "%s,FRONTEND,OPEN,,%d,%d,%d,%d,\n", f.Name, f.CurSessions, f.Sessions, f.BytesIn, f.BytesOut)
		for i, r := range f.Routes {
			fmt.Fprintf(&b, "%s,ROUTE:%s,OPEN,,,%d,,,\n", f.Name, routeName(i, r), r.Hits)
		}
	}
	for _, be := range s.Backends {
		for _, sv := range be.Servers {
			fmt.Fprintf(&b, "%s,%s,%s,%d,%d,%d,%d,%d,%d\n", be.Name, sv.Name, humanStatus(sv), sv.Weight, sv.CurSessions, sv.Sessions, sv.BytesIn, sv.BytesOut, sv.ConnFailures)
		}
	}
	return b.String()
}

// humanStatus is a server's state in one word: MAINT, DRAIN, UP or DOWN.
func humanStatus(s session.ServerStats) string {
	switch {
	case s.Admin == "maint":
		return "MAINT"
	case s.Admin == "drain":
		return "DRAIN"
	case s.Up:
		return "UP"
	}
	return "DOWN"
}

// routeName is a route's place in its frontend's list, from 1, or
// "default".
func routeName(i int, r session.RouteStats) string {
	if r.Default {
		return "default"
	}
	return strconv.Itoa(i + 1)
}

func showRoutes(p *session.Proxy) string {
	var b strings.Builder
	b.WriteString("# frontend route backend sessions_total match\n")
	for _, f := range p.Snapshot().Frontends {
		for i, r := range f.Routes {
			be := r.Backend
			if be == "" {
				be = "-" // a default that closes: no-route
			}
			fmt.Fprintf(&b, "%s %s %s %d %s\n", f.Name, routeName(i, r), be, r.Hits, r.Match)
		}
	}
	return b.String()
}

// Send connects to the socket at path, sends one command and returns the
// answer: the client side of `ringproxy ctl`.
func Send(path, command string) (string, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("admin socket %s: %w", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	_, sendErr := fmt.Fprintln(c, command)
	c.(*net.UnixConn).CloseWrite()
	answer := readAnswer(c)
	// A socket at its connection limit answers and closes before reading:
	// its answer says more than the write that failed.
	if sendErr != nil && answer == "" {
		return "", fmt.Errorf("admin socket %s: send: %w", path, sendErr)
	}
	return unframe(answer), nil
}

// unframe drops the empty line that ends an answer (an empty answer is
// that line alone): ctl prints what the command said.
func unframe(answer string) string {
	if answer == "\n" || strings.HasSuffix(answer, "\n\n") {
		return answer[:len(answer)-1]
	}
	return answer
}

// readAnswer reads until the socket closes the connection.
func readAnswer(c net.Conn) string {
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
