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
		// and answer in turn, as HAProxy's CLI does.
		for _, cmd := range strings.Split(r.Text(), ";") {
			if cmd = strings.TrimSpace(cmd); cmd != "" {
				fmt.Fprint(c, s.run(cmd))
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

// Run executes one command line against p and returns its answer,
// ending with a newline.
func Run(p *session.Proxy, line string) string {
	f := strings.Fields(line)
	switch {
	case match(f, "help"), match(f, "h"):
		return help
	case match(f, "show", "info"):
		return showInfo(p, f[2:], nil)
	case match(f, "show", "stat"):
		return showStat(p, f[2:])
	case match(f, "show", "routes"):
		return showRoutes(p)
	case match(f, "show", "servers", "state"):
		return showServers(p)
	case match(f, "show", "sess"):
		return showSess(p)
	case match(f, "disable", "server") && len(f) == 3:
		return onServer(f[2], func(b, s string) error { return p.SetServerEnabled(b, s, false) })
	case match(f, "enable", "server") && len(f) == 3:
		return onServer(f[2], func(b, s string) error { return p.SetServerEnabled(b, s, true) })
	case match(f, "set", "weight") && len(f) == 4:
		w, err := strconv.Atoi(f[3])
		if err != nil {
			return fmt.Sprintf("error: bad weight %q\n", f[3])
		}
		return onServer(f[2], func(b, s string) error { return p.SetServerWeight(b, s, w) })
	case match(f, "shutdown", "sessions", "server") && len(f) == 4:
		var n int
		out := onServer(f[3], func(b, s string) (err error) { n, err = p.ShutdownSessions(b, s); return err })
		if out == "done\n" {
			return fmt.Sprintf("%d sessions closed\n", n)
		}
		return out
	}
	return fmt.Sprintf("error: unknown command %q; try help\n", line)
}

const help = `help                             this list
reload                           re-read the config file and apply it without dropping a connection
show info                        process, as HAProxy 2.6 gives it (Name, Uptime, CurrConns, ...), then ringproxy's keys
show info human                  process: engine, workers, sessions, uptime; control listeners
show stat                        HAProxy 2.6's CSV: per frontend a FRONTEND row; per backend its servers, then BACKEND
show stat IID|PROXY TYPE SID     rows of one proxy, types (1 frontends, 2 backends, 4 servers, ORed) and server; -1: any
show stat human                  one line per frontend, route and server, CSV
CMD1; CMD2; ...                  several commands on one line, answered in turn
show routes                      each frontend's routes in order: match, backend, sessions taken
show servers state               one line per server: state, weight, sessions
show sess                        current sessions: client, frontend, server, age, bytes
disable server BACKEND/SERVER    drain: no new sessions, current ones go on
enable server BACKEND/SERVER     undo disable
set weight BACKEND/SERVER N      weight 0..256 for new sessions
shutdown sessions server BACKEND/SERVER   close every session of a server
`

func match(f []string, words ...string) bool {
	if len(f) < len(words) {
		return false
	}
	for i, w := range words {
		if f[i] != w {
			return false
		}
	}
	return true
}

func onServer(arg string, do func(be, srv string) error) string {
	be, srv, ok := strings.Cut(arg, "/")
	if !ok || be == "" || srv == "" {
		return fmt.Sprintf("error: want BACKEND/SERVER, got %q\n", arg)
	}
	if err := do(be, srv); err != nil {
		return "error: " + err.Error() + "\n"
	}
	return "done\n"
}

// showInfo is show info: HAProxy's keys in its order (haproxy.go),
// ending with an empty line as HAProxy's answers do; or with "human"
// ringproxy's own, the control listeners' counts among them. counts are the control listeners'
// (nil: unknown, from Run).
func showInfo(p *session.Proxy, args []string, counts map[string]ctlnet.Counts) string {
	s := p.Snapshot()
	switch {
	case len(args) == 0:
		return haproxyInfo(s, len(counts)) + "\n"
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
			fmt.Fprintf(&b, "%s,%s,%s,%d,%d,%d,%d,%d,%d\n", be.Name, sv.Name, status(sv), sv.Weight, sv.CurSessions, sv.Sessions, sv.BytesIn, sv.BytesOut, sv.ConnFailures)
		}
	}
	return b.String()
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

func status(s session.ServerStats) string {
	switch {
	case s.Disabled:
		return "MAINT"
	case s.Up:
		return "UP"
	}
	return "DOWN"
}

func showServers(p *session.Proxy) string {
	var b strings.Builder
	b.WriteString("# backend server address status weight current_sessions maxconn\n")
	for _, be := range p.Snapshot().Backends {
		for _, sv := range be.Servers {
			fmt.Fprintf(&b, "%s %s %s %s %d %d %d\n", be.Name, sv.Name, sv.Addr, status(sv), sv.Weight, sv.CurSessions, sv.MaxConn)
		}
	}
	return b.String()
}

func showSess(p *session.Proxy) string {
	var b strings.Builder
	b.WriteString("# worker client frontend backend/server state age bytes_in bytes_out\n")
	for _, s := range p.Sessions() {
		fmt.Fprintf(&b, "%d %s %s %s/%s %s %s %d %d\n", s.Worker, s.Client, s.Frontend, s.Backend, s.Server, s.State, s.Age.Round(time.Millisecond), s.BytesIn, s.BytesOut)
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
	return answer, nil
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
