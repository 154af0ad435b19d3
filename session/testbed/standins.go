package testbed

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Stand-ins for the stateful servers health check recipes are written
// for: Redis (master or replica), Patroni's REST API and PostgreSQL's
// SSLRequest. Each answers what its recipe asks the way the real server
// does (the answers were taken from Redis 7.0 and PostgreSQL 15) and can
// change role while it runs, as a failover does.

// Redis speaks enough of Redis's inline protocol for role checks and
// for telling which server a client reached: AUTH, PING, INFO, QUIT, and
// WHO, its own, which answers the server's name. Before AUTH, when a
// password is set, it refuses everything else as Redis does.
type Redis struct {
	*Server
	name, password string
	master         atomic.Bool
}

// StartRedis starts a Redis stand-in; password "" needs no AUTH.
func StartRedis(t testing.TB, name, password string, master bool) *Redis {
	t.Helper()
	r := &Redis{Server: newServer(t), name: name, password: password}
	r.master.Store(master)
	r.start(r.serve)
	return r
}

// SetMaster makes r the master (true) or a replica: what INFO
// replication says from the next command on.
func (r *Redis) SetMaster(master bool) { r.master.Store(master) }

// Redis 7.0's INFO replication, master and replica, as captured.
const (
	redisMasterInfo = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n" +
		"slave0:ip=127.0.0.1,port=16380,state=online,offset=14,lag=0\r\nmaster_failover_state:no-failover\r\n" +
		"master_replid:211b6e2d7c5a0b4171445bf9b9483046c269f6db\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n" +
		"master_repl_offset:14\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:1\r\nrepl_backlog_size:1048576\r\n" +
		"repl_backlog_first_byte_offset:1\r\nrepl_backlog_histlen:14\r\n"
	redisReplicaInfo = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:16379\r\n" +
		"master_link_status:up\r\nmaster_last_io_seconds_ago:1\r\nmaster_sync_in_progress:0\r\n" +
		"slave_read_repl_offset:14\r\nslave_repl_offset:14\r\nslave_priority:100\r\nslave_read_only:1\r\n" +
		"replica_announced:1\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n" +
		"master_replid:211b6e2d7c5a0b4171445bf9b9483046c269f6db\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n" +
		"master_repl_offset:14\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:1\r\nrepl_backlog_size:1048576\r\n" +
		"repl_backlog_first_byte_offset:1\r\nrepl_backlog_histlen:14\r\n"
)

func (r *Redis) serve(c *net.TCPConn) {
	br := bufio.NewReader(c)
	authed := r.password == ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		cmd = strings.ToUpper(cmd)
		var reply string
		switch {
		case cmd == "QUIT":
			io.WriteString(c, "+OK\r\n")
			return
		case cmd == "AUTH" && r.password == "":
			reply = "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
		case cmd == "AUTH" && arg == r.password:
			authed, reply = true, "+OK\r\n"
		case cmd == "AUTH":
			reply = "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
		case !authed:
			reply = "-NOAUTH Authentication required.\r\n"
		case cmd == "PING":
			reply = "+PONG\r\n"
		case cmd == "INFO":
			info := redisReplicaInfo
			if r.master.Load() {
				info = redisMasterInfo
			}
			reply = fmt.Sprintf("$%d\r\n%s\r\n", len(info), info)
		case cmd == "WHO":
			reply = "+" + r.name + "\r\n"
		default:
			reply = fmt.Sprintf("-ERR unknown command '%s', with args beginning with: \r\n", cmd)
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// Patroni stands in for Patroni's REST API: GET /primary (also /master,
// /leader and /) answers 200 on the leader and 503 elsewhere, /replica
// the reverse, /health 200, each with a JSON body as Patroni's; anything
// else 404. It counts requests by path.
type Patroni struct {
	*Server
	leader atomic.Bool
	mu     sync.Mutex
	hits   map[string]int
}

// StartPatroni starts a Patroni REST stand-in.
func StartPatroni(t testing.TB, leader bool) *Patroni {
	t.Helper()
	return StartPatroniOn(t, "127.0.0.1:0", leader)
}

// StartPatroniOn starts a Patroni REST stand-in on addr: Patroni's port
// is the same on every node, so a cluster's stand-ins each take their own
// loopback address ("127.0.0.11:8008", "127.0.0.12:8008").
func StartPatroniOn(t testing.TB, addr string, leader bool) *Patroni {
	t.Helper()
	p := &Patroni{Server: newServerOn(t, addr), hits: map[string]int{}}
	p.leader.Store(leader)
	p.start(p.serve)
	return p
}

// SetLeader makes p the leader (true) or a replica.
func (p *Patroni) SetLeader(leader bool) { p.leader.Store(leader) }

// Hits is how many requests for path came in.
func (p *Patroni) Hits(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[path]
}

func (p *Patroni) serve(c *net.TCPConn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.hits[req.URL.Path]++
		p.mu.Unlock()
		leader := p.leader.Load()
		role := "replica"
		if leader {
			role = "master"
		}
		status := http.StatusNotFound
		switch req.URL.Path {
		case "/", "/primary", "/master", "/leader":
			status = pick(leader, http.StatusOK, http.StatusServiceUnavailable)
		case "/replica":
			status = pick(!leader, http.StatusOK, http.StatusServiceUnavailable)
		case "/health":
			status = http.StatusOK
		}
		body := fmt.Sprintf(`{"state": "running", "role": %q, "server_version": 150004, "timeline": 1}`, role)
		fmt.Fprintf(c, "HTTP/1.0 %d %s\r\nServer: BaseHTTP/0.6 Python/3.11.2\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			status, http.StatusText(status), len(body), body)
		if req.Close || req.ProtoMinor == 0 {
			return
		}
	}
}

func pick(cond bool, yes, no int) int {
	if cond {
		return yes
	}
	return no
}

// SSLRequest is PostgreSQL's request to start TLS: length 8, code
// 80877103.
var SSLRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// Postgres stands in for PostgreSQL's first exchange: to an SSLRequest it
// answers one byte, 'S' (TLS to follow) or 'N' (no TLS here), then waits
// for what a client would send next, as the real server does.
type Postgres struct {
	*Server
	answer atomic.Uint32
}

// StartPostgres starts a PostgreSQL stand-in answering SSLRequest with
// answer ('S' or 'N').
func StartPostgres(t testing.TB, answer byte) *Postgres {
	t.Helper()
	p := &Postgres{Server: newServer(t)}
	p.answer.Store(uint32(answer))
	p.start(p.serve)
	return p
}

// SetAnswer changes the byte the next SSLRequest gets.
func (p *Postgres) SetAnswer(answer byte) { p.answer.Store(uint32(answer)) }

func (p *Postgres) serve(c *net.TCPConn) {
	first := make([]byte, len(SSLRequest))
	if _, err := io.ReadFull(c, first); err != nil || string(first) != string(SSLRequest) {
		return
	}
	if _, err := c.Write([]byte{byte(p.answer.Load())}); err != nil {
		return
	}
	io.Copy(io.Discard, c)
}

// Agent is an agent-check stand-in, the small daemon HAProxy's
// agent-check asks: for every connection it reads what the checker sends
// (up to a line, or nothing within 50ms), answers its current reply and
// a newline, and closes, as the agents of the HAProxy manual do.
type Agent struct {
	*Server
	mu    sync.Mutex
	reply string
	sent  string
}

// StartAgent starts an agent answering reply ("up 75%").
func StartAgent(t testing.TB, reply string) *Agent {
	t.Helper()
	a := &Agent{Server: newServer(t), reply: reply}
	a.start(a.serve)
	return a
}

// Say changes the answer from the next connection on.
func (a *Agent) Say(reply string) {
	a.mu.Lock()
	a.reply = reply
	a.mu.Unlock()
}

// Sent is what the last checker sent before the answer.
func (a *Agent) Sent() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent
}

func (a *Agent) serve(c *net.TCPConn) {
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 256)
	n, _ := c.Read(buf)
	a.mu.Lock()
	a.sent = string(buf[:n])
	reply := a.reply
	a.mu.Unlock()
	io.WriteString(c, reply+"\n")
}
