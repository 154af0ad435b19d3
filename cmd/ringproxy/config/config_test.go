package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/route"
)

// Valid tails appended after the part of a row under test, so that line
// numbers in the expectations count from the row's own first line.
const (
	fe = `
[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
backend = "app"
`
	be = `
[[backend]]
name = "app"
[[backend.server]]
name = "s1"
address = "127.0.0.1:9000"
`
)

type badConfig struct {
	name string
	toml string
	want string // substring of the error, file and line included
}

var badConfigs = []badConfig{
	// syntax
	{"syntax", "[global", "t.toml:1: expected '.' or ']' to end table name, but got end of file instead"},
	{"syntax line", "[global]\nworkers = = 1\n", "t.toml:2: "},
	{"duplicate key", "[global]\nworkers = 1\nworkers = 2\n", "t.toml:3: Key 'global.workers' has already been defined."},

	// unknown keys and tables
	{"unknown top key", "foo = 1\n" + fe + be, "t.toml:1: unknown key foo"},
	{"unknown table", "[admn]\nx = 1\n" + fe + be, "t.toml:1: unknown table admn (did you mean admin?)"},
	{"unknown global key", "[global]\nworkers = 1\nmaxconns = 5\n" + fe + be, "t.toml:3: unknown key global.maxconns (did you mean maxconn?)"},
	{"key case matters", "[global]\nWorkers = 2\n" + fe + be, "t.toml:2: unknown key global.Workers (did you mean workers?)"},
	{"unknown key second frontend", `[[frontend]]
name = "a"
bind = ["127.0.0.1:1"]
backend = "app"
[[frontend]]
name = "b"
bnd = ["127.0.0.1:2"]
backend = "app"
` + be, "t.toml:7: unknown key frontend.bnd (did you mean bind?)"},
	{"unknown server key", fe + `
[[backend]]
name = "app"
[[backend.server]]
name = "s1"
address = "127.0.0.1:9000"
[[backend.server]]
name = "s2"
adress = "127.0.0.1:9001"
`, "t.toml:14: unknown key backend.server.adress (did you mean address?)"},
	{"unknown inline frontend key", `frontend = [{name = "web", bind = ["127.0.0.1:1"], backend = "app", bogus = 1}]` + be,
		"t.toml:1: unknown key frontend.bogus"},
	{"dotted unknown", "global.bogus = 1\n" + fe + be, "t.toml:1: unknown key global.bogus"},

	// wrong types
	{"int as string", "[global]\nworkers = \"4\"\n" + fe + be, `t.toml:2: global.workers: expected integer, got string`},
	{"float int", "[global]\nmaxconn = 1.5\n" + fe + be, `t.toml:2: global.maxconn: expected integer, got float`},
	{"bool as string", be + fe + "tcp_nodelay = \"yes\"\n", `t.toml:12: frontend[0] (web).tcp_nodelay: expected boolean, got string`},
	{"duration as int", "[[backend]]\nname = \"app\"\ntimeout_server = 30\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe,
		`t.toml:3: backend[0] (app).timeout_server: expected a duration string like "30s", got integer`},
	{"bind not array", "[[frontend]]\nname = \"web\"\nbind = 80\nbackend = \"app\"\n" + be, `t.toml:3: frontend[0] (web).bind: expected array of strings, got integer`},
	{"bind element not string", "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:1\", 2]\nbackend = \"app\"\n" + be, `t.toml:3: frontend[0] (web).bind[1]: expected string, got integer`},
	{"frontend as table", "[frontend]\nname = \"web\"\n" + be, `t.toml:1: frontend: expected [[frontend]] (an array of tables), got table`},
	{"global not table", "global = 1\n" + fe + be, `t.toml:1: global: expected table, got integer`},

	// bad values
	{"bad duration", "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:1\"]\nbackend = \"app\"\ntimeout_client = \"3x\"\n" + be,
		`t.toml:5: frontend[0] (web).timeout_client: bad duration "3x": time: unknown unit "x" in duration "3x"`},
	{"negative duration", "[global]\ngrace = \"-1s\"\n" + fe + be, `t.toml:2: global.grace: bad duration "-1s": must not be negative`},
	{"zero hard_stop_after", "[global]\nhard_stop_after = \"0s\"\n" + fe + be, `t.toml:2: global.hard_stop_after: bad duration "0s": must be greater than 0`},
	{"bad splice", "[global]\nsplice = \"always\"\n" + fe + be, `t.toml:2: global.splice: unknown mode "always" (want "auto" or "off")`},
	{"batch_wait too long", "[global]\nbatch_wait = \"5ms\"\n" + fe + be, `t.toml:2: global.batch_wait: must be at most 1ms, got 5ms`},
	{"batch_wait with epoll", "[global]\nengine = \"epoll\"\nbatch_wait = \"50us\"\n" + fe + be,
		`t.toml:3: global.batch_wait: applies to the uring engine only (engine is "epoll"); remove it or set "0"`},
	{"busy_poll too long", "[global]\nbusy_poll = \"2ms\"\n" + fe + be, `t.toml:2: global.busy_poll: must be at most 1ms, got 2ms`},
	{"busy_poll with epoll", "[global]\nengine = \"epoll\"\nbusy_poll = \"20us\"\n" + fe + be,
		`t.toml:3: global.busy_poll: applies to the uring engine only (engine is "epoll"); remove it or set "0"`},
	{"zero timeout", "[[backend]]\nname = \"app\"\ntimeout_connect = \"0s\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe,
		`t.toml:3: backend[0] (app).timeout_connect: bad duration "0s": must be greater than 0`},
	{"negative tunnel", "[[backend]]\nname = \"app\"\ntimeout_tunnel = \"-1h\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe,
		`t.toml:3: backend[0] (app).timeout_tunnel: bad duration "-1h": must not be negative`},
	{"bad size unit", "[global]\nbufsize = \"16KB\"\n" + fe + be, `t.toml:2: global.bufsize: bad size "16KB": want digits and an optional unit B, KiB, MiB or GiB`},
	{"size small", "[global]\nbufsize = 512\n" + fe + be, `t.toml:2: global.bufsize: must be between 1KiB and 1MiB, got 512B`},
	{"size large", "[global]\nbufsize = \"2MiB\"\n" + fe + be, `t.toml:2: global.bufsize: must be between 1KiB and 1MiB, got 2MiB`},
	{"size negative", "[global]\nbufsize = -1\n" + fe + be, `t.toml:2: global.bufsize: bad size -1: must not be negative`},
	{"size overflow", "[global]\nbufsize = \"99999999999999999999GiB\"\n" + fe + be, `t.toml:2: global.bufsize: bad size "99999999999999999999GiB": too large`},
	{"size type", "[global]\nbufsize = true\n" + fe + be, `t.toml:2: global.bufsize: expected a size (integer bytes or a string like "16KiB"), got boolean`},
	{"workers negative", "[global]\nworkers = -1\n" + fe + be, `t.toml:2: global.workers: must be between 0 and 4096, got -1`},
	{"maxconn zero", "[global]\nmaxconn = 0\n" + fe + be, `t.toml:2: global.maxconn: must be at least 1, got 0`},
	{"maxsock negative", "[global]\nmaxsock = -5\n" + fe + be, `t.toml:2: global.maxsock: must be at least 0, got -5`},
	{"maxaccept high", "[global]\nmaxaccept = 2000\n" + fe + be, `t.toml:2: global.maxaccept: must be between 1 and 1024, got 2000`},
	{"buffers not pow2", "[global]\nbuffers = 100\n" + fe + be, `t.toml:2: global.buffers: must be 0 (auto) or a power of two from 16 to 32768, got 100`},
	{"buffers small", "[global]\nbuffers = 8\n" + fe + be, `t.toml:2: global.buffers: must be 0 (auto) or a power of two from 16 to 32768, got 8`},
	{"buffers large", "[global]\nbuffers = 65536\n" + fe + be, `t.toml:2: global.buffers: must be between 0 and 32768, got 65536`},
	{"retries high", "[[backend]]\nname = \"app\"\nretries = 101\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe,
		`t.toml:3: backend[0] (app).retries: must be between 0 and 100, got 101`},
	{"frontend maxconn negative", be + fe + "maxconn = -1\n", `t.toml:12: frontend[0] (web).maxconn: must be at least 0, got -1`},
	{"log level", "[log]\nlevel = \"loud\"\n" + fe + be, `t.toml:2: log.level: unknown level "loud" (want debug, info, warn or error)`},
	{"log target", "[log]\ntarget = \"file\"\n" + fe + be, `t.toml:2: log.target: unknown target "file" (want stdout, stderr or syslog)`},
	{"log format", "[log]\nformat = \"clf\"\n" + fe + be, `t.toml:2: log.format: unknown format "clf" (want tcplog or json)`},
	{"engine unknown", "[global]\nengine = \"kqueue\"\n" + fe + be, `t.toml:2: global.engine: unknown engine "kqueue" (want "uring" or "epoll")`},
	{"bad name", "[[frontend]]\nname = \"my web\"\nbind = [\"127.0.0.1:1\"]\nbackend = \"app\"\n" + be,
		`t.toml:2: frontend[0].name: bad name "my web": use 1 to 64 letters, digits, '.', '_' or '-'`},

	// addresses
	{"bind hostname", "[[frontend]]\nname = \"web\"\nbind = [\"localhost:80\"]\nbackend = \"app\"\n" + be,
		`t.toml:3: frontend[0] (web).bind[0]: bad address "localhost:80": must be an IP literal`},
	{"bind no port", "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1\"]\nbackend = \"app\"\n" + be,
		`t.toml:3: frontend[0] (web).bind[0]: bad address "127.0.0.1": `},
	{"bind ipv6 unbracketed", "[[frontend]]\nname = \"web\"\nbind = [\"::1:80\"]\nbackend = \"app\"\n" + be,
		`t.toml:3: frontend[0] (web).bind[0]: bad address "::1:80": `},
	{"bind port range", "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:70000\"]\nbackend = \"app\"\n" + be,
		`t.toml:3: frontend[0] (web).bind[0]: bad address "127.0.0.1:70000": `},
	{"bind after multiline array", `[[frontend]]
name = "web"
bind = [
  "127.0.0.1:8080",  # a comment with a "quote
  """127.0.0.1:8081""",
  "example.com:80",
]
backend = "app"
timeout_client = "x"
` + be, `t.toml:9: frontend[0] (web).timeout_client: bad duration "x"`},
	{"server port 0", "[[backend]]\nname = \"app\"\n[[backend.server]]\nname = \"s1\"\naddress = \"127.0.0.1:0\"\n" + fe,
		`t.toml:5: backend[0] (app).server[0] (s1).address: bad address "127.0.0.1:0": port 0 cannot be connected to`},
	{"server bad hostname", "[[backend]]\nname = \"app\"\n[[backend.server]]\nname = \"s1\"\naddress = \"db..local:5432\"\n" + fe,
		`t.toml:5: backend[0] (app).server[0] (s1).address: bad address "db..local:5432": "db..local" is neither an IP address nor a DNS name`},
	{"server no address", "[[backend]]\nname = \"app\"\n[[backend.server]]\nname = \"s1\"\n" + fe,
		`t.toml:3: backend[0] (app).server[0] (s1): missing address`},

	// structure and references
	{"empty file", "", `t.toml: no [[frontend]]: nothing would listen`},
	{"missing backend ref", "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:1\"]\nbackend = \"nope\"\n" + be,
		`t.toml:4: frontend[0] (web).backend: no backend named "nope"`},
	{"missing backend key", "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:1\"]\n" + be, `t.toml:1: frontend[0] (web): missing backend`},
	{"empty backend ref", "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:1\"]\nbackend = \"\"\n", `t.toml:4: frontend[0] (web): missing backend`},
	{"missing frontend name", "[[frontend]]\nbind = [\"127.0.0.1:1\"]\nbackend = \"app\"\n" + be, `t.toml:1: frontend[0]: missing name`},
	{"empty backend name", "[[backend]]\nname = \"\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe, `t.toml:2: backend[0]: missing name`},
	{"missing server name", "[[backend]]\nname = \"app\"\n[[backend.server]]\naddress = \"127.0.0.1:1\"\n" + fe, `t.toml:3: backend[0] (app).server[0]: missing name`},
	{"no bind", "[[frontend]]\nname = \"web\"\nbackend = \"app\"\n" + be, `t.toml:1: frontend[0] (web): no bind address`},
	{"empty bind", "[[frontend]]\nname = \"web\"\nbind = []\nbackend = \"app\"\n" + be, `t.toml:3: frontend[0] (web): no bind address`},
	{"no servers", "[[backend]]\nname = \"app\"\n" + fe, `t.toml:1: backend[0] (app): no servers`},
	{"duplicate frontend", fe + fe + be, `t.toml:8: frontend[1] (web).name: duplicate frontend name "web" (also frontend[0] (web))`},
	{"duplicate backend", be + be + fe, `t.toml:9: backend[1] (app).name: duplicate backend name "app" (also backend[0] (app))`},
	{"duplicate server", fe + "[[backend]]\nname = \"app\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:2\"\n",
		`t.toml:12: backend[0] (app).server[1] (s).name: duplicate server name "s" (also backend[0] (app).server[0] (s))`},
	{"same bind twice", fe + "[[frontend]]\nname = \"b\"\nbind = [\"127.0.0.1:8080\"]\nbackend = \"app\"\n" + be,
		`t.toml:8: frontend[1] (b).bind[0]: 127.0.0.1:8080 is already bound by frontend[0] (web).bind[0]`},
	{"same bind in one frontend", "[[frontend]]\nname = \"web\"\nbind = [\"[::]:80\", \"[::]:80\"]\nbackend = \"app\"\n" + be,
		`t.toml:3: frontend[0] (web).bind[1]: [::]:80 is already bound by frontend[0] (web).bind[0]`},

	// not supported yet
	{"admin socket mode", fe + be + "[admin]\nsocket = \"/run/ringproxy/admin.sock\"\nsocket_mode = \"rw\"\n", `t.toml:14: admin.socket_mode: bad mode "rw"`},
	{"admin stats bad", fe + be + "[admin]\nstats = \"localhost:9000\"\n", `t.toml:13: admin.stats: bad address "localhost:9000"`},
	{"stats_admin without stats", fe + be + "[admin]\nstats_admin = true\n", `t.toml:13: admin.stats_admin: needs stats: the page it acts from`},
	{"stats_admin_allow alone", fe + be + "[admin]\nstats = \"127.0.0.1:9000\"\nstats_admin_allow = [\"10.0.0.0/8\"]\n", `t.toml:14: admin.stats_admin_allow: without stats_admin = true the page takes no action`},
	{"stats_admin_allow bad", fe + be + "[admin]\nstats = \"127.0.0.1:9000\"\nstats_admin = true\nstats_admin_allow = [\"10.0.0.0/33\"]\n", `admin.stats_admin_allow`},
	{"on_down unknown", "[[backend]]\nname = \"app\"\non_down = \"kill\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe,
		`t.toml:3: backend[0] (app).on_down: unknown on_down "kill" (want "shutdown-sessions", or leave it out)`},
	{"on_up unknown", "[[backend]]\nname = \"app\"\non_up = \"shutdown-sessions\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe,
		`t.toml:3: backend[0] (app).on_up: unknown on_up "shutdown-sessions" (want "shutdown-backup-sessions", or leave it out)`},
	{"on_up without failback", "[[backend]]\nname = \"app\"\nfailback = false\non_up = \"shutdown-backup-sessions\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe,
		`t.toml:4: backend[0] (app).on_up: on_up = "shutdown-backup-sessions" brings clients back to a primary, which failback = false keeps them from`},
	{"admin unknown key", "[admin]\nstat = 1\n" + fe + be, `t.toml:2: unknown key admin.stat (did you mean stats?)`},
	{"balance unknown", "[[backend]]\nname = \"app\"\nbalance = \"fastest\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe,
		`t.toml:3: backend[0] (app).balance: unknown balance "fastest"`},
	{"check kind", fe + be + "[backend.check]\nkind = \"ping\"\n", `t.toml:13: backend[0] (app).check.kind: unknown check kind "ping" (want tcp, http, expect or agent)`},
	{"check expect missing", fe + be + "[backend.check]\nkind = \"expect\"\nsend = \"PING\\r\\n\"\n", `backend[0] (app).check: kind = "expect" needs expect`},
	{"check timeout above interval", fe + be + "[backend.check]\ninterval = \"1s\"\ntimeout = \"2s\"\n", `t.toml:14: backend[0] (app).check.timeout: timeout 2s is longer than interval 1s`},
	{"check rise zero", fe + be + "[backend.check]\nrise = 0\n", `t.toml:13: backend[0] (app).check.rise: must be between 1 and 100, got 0`},
	{"check path", fe + be + "[backend.check]\nkind = \"http\"\npath = \"healthz\"\n", `t.toml:14: backend[0] (app).check.path: path "healthz" must start with /`},
	{"check unknown key", fe + be + "[backend.check]\nknd = \"tcp\"\n", `t.toml:13: unknown key backend.check.knd (did you mean kind?)`},
	{"check unknown key", fe + be + "[backend.check]\nknd = \"tcp\"\n", `t.toml:13: unknown key backend.check.knd (did you mean kind?)`},
	{"check send bad escape", fe + be + "[backend.check]\nkind = \"expect\"\nsend = 'PING\\r\\q'\nexpect = \"+PONG\"\n",
		`t.toml:14: backend[0] (app).check.send: bad send: unknown escape \q (want \r, \n, \t, \\ or \xHH)`},
	{"check port range", fe + be + "[backend.check]\nport = 70000\n", `t.toml:13: backend[0] (app).check.port: must be between 1 and 65535, got 70000`},
	{"check address with port", fe + be + "[backend.check]\naddress = \"10.0.0.5:8008\"\n",
		`t.toml:13: backend[0] (app).check.address: bad address "10.0.0.5:8008": want an IP without a port (set the port with port)`},
	{"check address hostname", fe + be + "[backend.check]\naddress = \"db1\"\n", `t.toml:13: backend[0] (app).check.address: bad address "db1": want an IP literal`},
	{"check address empty", fe + be + "[backend.check]\naddress = \"\"\n", `t.toml:13: backend[0] (app).check.address: empty address`},
	{"server check_port without check", fe + be + "check_port = 8008\n",
		`t.toml:12: backend[0] (app).server[0] (s1).check_port: the backend has no [backend.check], so check_port would do nothing`},
	{"server check_address without check", fe + be + "check_address = \"10.0.0.5\"\n",
		`t.toml:12: backend[0] (app).server[0] (s1).check_address: the backend has no [backend.check], so check_address would do nothing`},
	{"server check_address with port", fe + be + "check_address = \"10.0.0.5:1\"\n[backend.check]\n",
		`t.toml:12: backend[0] (app).server[0] (s1).check_address: bad address "10.0.0.5:1": want an IP without a port (set the port with check_port)`},
	{"server check_port zero", fe + be + "check_port = 0\n[backend.check]\n", `t.toml:12: backend[0] (app).server[0] (s1).check_port: must be between 1 and 65535, got 0`},

	// names and [resolvers]
	{"server name port 0", fe + "[[backend]]\nname = \"app\"\n[[backend.server]]\nname = \"s1\"\naddress = \"db.internal:0\"\n",
		`t.toml:10: backend[0] (app).server[0] (s1).address: bad address "db.internal:0": port "0": want 1 to 65535`},
	{"server name without port", fe + "[[backend]]\nname = \"app\"\n[[backend.server]]\nname = \"s1\"\naddress = \"db.internal\"\n",
		`t.toml:10: backend[0] (app).server[0] (s1).address: bad address "db.internal": want IP:port or name:port (IPv6 in brackets)`},
	{"init_addr on an IP", fe + be + "init_addr = \"libc\"\n",
		`t.toml:12: backend[0] (app).server[0] (s1).init_addr: init_addr applies to a server named by DNS; this one's address is an IP`},
	{"init_addr on a backend without names", fe + "[[backend]]\nname = \"app\"\ninit_addr = \"none\"\n[[backend.server]]\nname = \"s1\"\naddress = \"127.0.0.1:1\"\n",
		`t.toml:8: backend[0] (app).init_addr: init_addr applies to servers named by DNS, and this backend has none`},
	{"init_addr last", fe + "[[backend]]\nname = \"app\"\n[[backend.server]]\nname = \"s1\"\naddress = \"db.internal:5432\"\ninit_addr = \"last,libc\"\n",
		`t.toml:11: backend[0] (app).server[0] (s1).init_addr: init_addr "last" needs state_file: the address it takes is the one [global] state_file saved`},
	{"init_addr unknown", fe + "[[backend]]\nname = \"app\"\n[[backend.server]]\nname = \"s1\"\naddress = \"db.internal:5432\"\ninit_addr = [\"libc\", \"dns\"]\n",
		`t.toml:11: backend[0] (app).server[0] (s1).init_addr: unknown init_addr method "dns" (want last, libc, none or an IP address)`},
	{"resolvers bad nameserver", "[resolvers]\nnameservers = [\"10.0.0.53\", \"ns1.internal\"]\n" + fe + be,
		`t.toml:2: resolvers.nameservers[1]: bad nameserver "ns1.internal": want an IP, or IP:port (IPv6 in brackets)`},
	{"resolvers empty nameservers", "[resolvers]\nnameservers = []\n" + fe + be,
		`t.toml:2: resolvers.nameservers: empty: list nameservers, or leave the key out to use /etc/resolv.conf`},
	{"resolvers ttl range", "[resolvers]\nttl_min = \"10s\"\nttl_max = \"5s\"\n" + fe + be,
		`t.toml:3: resolvers.ttl_max: ttl_max 5s is below ttl_min 10s`},
	{"resolvers payload", "[resolvers]\naccepted_payload_size = 100\n" + fe + be,
		`t.toml:2: resolvers.accepted_payload_size: must be between 512 and 65535, got 100`},
	{"resolvers retries", "[resolvers]\nretries = 0\n" + fe + be,
		`t.toml:2: resolvers.retries: must be between 1 and 100, got 0`},
	{"resolvers unknown", "[resolvers]\nhold_other = \"1s\"\n" + fe + be, `t.toml:2: unknown key resolvers.hold_other`},

	// [[backend.check.step]]
	{"steps beside shorthand send", fe + be + "[backend.check]\nsend = \"PING\"\n[[backend.check.step]]\nexpect = \"+PONG\"\n",
		`t.toml:13: backend[0] (app).check.send: send on [backend.check] is the shorthand for a one-send, one-expect check: with [[backend.check.step]], make it a step`},
	{"steps with kind expect", fe + be + "[backend.check]\nkind = \"expect\"\n[[backend.check.step]]\nsend = \"PING\"\n",
		`t.toml:13: backend[0] (app).check.kind: kind = "expect" is the shorthand for one send and one expect; with [[backend.check.step]] use kind = "tcp" (the default)`},
	{"steps with kind http", fe + be + "[backend.check]\nkind = \"http\"\n[[backend.check.step]]\nsend = \"PING\"\n",
		`t.toml:14: backend[0] (app).check.step: an http check sends its own request: [[backend.check.step]] needs kind = "tcp" (the default)`},
	{"step no action", fe + be + "[backend.check]\n[[backend.check.step]]\ntimeout = \"1s\"\n",
		`t.toml:13: backend[0] (app).check.step[0]: a step needs one of send, send_hex, expect, expect_regex or expect_hex`},
	{"step two actions", fe + be + "[backend.check]\n[[backend.check.step]]\nsend = \"PING\"\n[[backend.check.step]]\nexpect = \"+PONG\"\nexpect_regex = \"PONG\"\n",
		`t.toml:17: backend[0] (app).check.step[1].expect_regex: a step does one thing and this one has expect and expect_regex: make them two steps`},
	{"step empty send", fe + be + "[backend.check]\n[[backend.check.step]]\nsend = \"\"\n", `t.toml:14: backend[0] (app).check.step[0].send: send is empty`},
	{"step bad hex", fe + be + "[backend.check]\n[[backend.check.step]]\nsend_hex = \"00000008 04d2162\"\n",
		`t.toml:14: backend[0] (app).check.step[0].send_hex: bad send_hex "00000008 04d2162": group "04d2162" has an odd number of digits`},
	{"step hex not hex", fe + be + "[backend.check]\n[[backend.check.step]]\nexpect_hex = \"0x53\"\n",
		`t.toml:14: backend[0] (app).check.step[0].expect_hex: bad expect_hex "0x53": 'x' is not a hex digit`},
	{"step hex empty", fe + be + "[backend.check]\n[[backend.check.step]]\nexpect_hex = \" \"\n", `t.toml:14: backend[0] (app).check.step[0].expect_hex: bad expect_hex " ": no hex digits`},
	{"step bad regex", fe + be + "[backend.check]\n[[backend.check.step]]\nexpect_regex = \"^+PONG(\"\n",
		`t.toml:14: backend[0] (app).check.step[0].expect_regex: bad regular expression "^+PONG(": error parsing regexp:`},
	{"step regex matches nothing", fe + be + "[backend.check]\n[[backend.check.step]]\nexpect_regex = \"(role:master)?\"\n",
		`t.toml:14: backend[0] (app).check.step[0].expect_regex: "(role:master)?" matches an empty answer: it would pass before the server said anything`},
	{"step expect too long", fe + be + "[backend.check]\n[[backend.check.step]]\nexpect_hex = \"" + strings.Repeat("ab", 16385) + "\"\n",
		`t.toml:14: backend[0] (app).check.step[0].expect_hex: 16385 bytes: more than the 16384 an expect reads, so it could never match`},
	{"step timeout above check's", fe + be + "[backend.check]\ntimeout = \"500ms\"\n[[backend.check.step]]\nexpect = \"x\"\ntimeout = \"1s\"\n",
		`t.toml:16: backend[0] (app).check.step[0].timeout: timeout 1s is longer than the check's timeout 500ms, which bounds the whole check`},
	{"step timeout zero", fe + be + "[backend.check]\n[[backend.check.step]]\nexpect = \"x\"\ntimeout = \"0s\"\n",
		`t.toml:15: backend[0] (app).check.step[0].timeout: bad duration "0s": must be greater than 0`},
	{"step unknown key", fe + be + "[backend.check]\n[[backend.check.step]]\nexpect_string = \"x\"\n",
		"t.toml:14: unknown key backend.check.step.expect_string"},
	{"step not a table", fe + be + "[backend.check]\nstep = \"send PING\"\n",
		`t.toml:13: backend[0] (app).check.step: expected [[backend.check.step]] (an array of tables), got string`},
	{"accept_proxy type", be + fe + "accept_proxy = \"yes\"\n", `t.toml:12: frontend[0] (web).accept_proxy: expected boolean, got string`},
	{"allow bad cidr", be + fe + "allow = [\"10.0.0.0/33\"]\n", `t.toml:12: frontend[0] (web).allow: allow[0]: bad CIDR "10.0.0.0/33"`},
	{"deny host bits", be + fe + "deny = [\"10.1.2.3/8\"]\n", `t.toml:12: frontend[0] (web).deny: deny[0]: "10.1.2.3/8" has host bits set (did you mean 10.0.0.0/8?)`},
	{"rate_limit negative", be + fe + "rate_limit = -1\n", `t.toml:12: frontend[0] (web).rate_limit: must be between 0 and 1000000, got -1`},
	{"per_source_rate type", be + fe + "per_source_rate = \"5\"\n", `t.toml:12: frontend[0] (web).per_source_rate: expected integer, got string`},
	{"send_proxy unknown", "[[backend]]\nname = \"app\"\nsend_proxy = \"v3\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe,
		`t.toml:3: backend[0] (app).send_proxy: unknown send_proxy "v3" (want "", "v1" or "v2")`},
	{"timeout_queue negative", "[[backend]]\nname = \"app\"\ntimeout_queue = \"-5s\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n" + fe,
		`t.toml:3: backend[0] (app).timeout_queue: bad duration "-5s": must not be negative`},
	{"weight too big", fe + be + "weight = 300\n", `t.toml:12: backend[0] (app).server[0] (s1).weight: must be between 0 and 256, got 300`},
	{"weight negative", fe + be + "weight = -1\n", `t.toml:12: backend[0] (app).server[0] (s1).weight: must be between 0 and 256, got -1`},
	{"consistent duplicate address", fe + "[[backend]]\nname = \"app\"\nbalance = \"consistent\"\n[[backend.server]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n[[backend.server]]\nname = \"b\"\naddress = \"127.0.0.1:1\"\n",
		`backend[0] (app).balance: balance: consistent:`},
	{"server maxconn negative", fe + be + "maxconn = -1\n", `t.toml:12: backend[0] (app).server[0] (s1).maxconn: must be at least 0, got -1`},

	// routes ([[frontend.route]])
	{"route missing backend", be + fe + "[[frontend.route]]\nsni = [\"a.example.com\"]\n", `t.toml:12: frontend[0] (web).route[0]: missing backend`},
	{"route empty backend", be + fe + "[[frontend.route]]\nsni = [\"a.example.com\"]\nbackend = \"\"\n", `t.toml:14: frontend[0] (web).route[0]: missing backend`},
	{"route unknown backend", be + fe + "[[frontend.route]]\nbackend = \"nope\"\n", `t.toml:13: frontend[0] (web).route[0].backend: no backend named "nope"`},
	{"route backend type", be + fe + "[[frontend.route]]\nbackend = 1\n", `t.toml:13: frontend[0] (web).route[0].backend: expected string, got integer`},
	{"route second backend", be + fe + "[[frontend.route]]\nsni = [\"a.example.com\"]\nbackend = \"app\"\n[[frontend.route]]\nsni = [\"b.example.com\"]\nbackend = \"nope\"\n",
		`t.toml:17: frontend[0] (web).route[1].backend: no backend named "nope"`},
	{"route sni empty label", be + fe + "[[frontend.route]]\nsni = [\"a.example.com\", \"a..example.com\"]\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].sni: sni[1]: server name "a..example.com" has an empty label`},
	{"route sni inner wildcard", be + fe + "[[frontend.route]]\nsni = [\"a.*.example.com\"]\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].sni: sni[0]: server name "a.*.example.com": a wildcard is only allowed as the whole first label`},
	{"route sni not a name", be + fe + "[[frontend.route]]\nsni = [\"b\u00fccher.de\"]\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].sni: sni[0]: server name "bücher.de":`},
	{"route sni type", be + fe + "[[frontend.route]]\nsni = [\"a.example.com\", 7]\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].sni[1]: expected string, got integer`},
	{"route alpn empty", be + fe + "[[frontend.route]]\nalpn = [\"h2\", \"\"]\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].alpn: alpn[1]: empty protocol name`},
	{"route alpn too long", be + fe + "[[frontend.route]]\nalpn = [\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].alpn: alpn[0]: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" is 33 bytes: the ClientHello reader keeps protocols of at most 32 bytes, so it could never match`},
	{"route protocol unknown", be + fe + "[[frontend.route]]\nprotocol = \"smtp\"\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].protocol: unknown protocol "smtp" (want tls, http, ssh or none)`},
	{"route protocol type", be + fe + "[[frontend.route]]\nprotocol = [\"tls\"]\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].protocol: expected string, got array`},
	{"route sni with http", be + fe + "[[frontend.route]]\nsni = [\"a.example.com\"]\nprotocol = \"http\"\nbackend = \"app\"\n",
		`t.toml:14: frontend[0] (web).route[0].protocol: protocol "http" can never match a route with sni or alpn (they are read from a TLS ClientHello): use "tls" or leave protocol out`},
	{"route alpn with ssh", be + fe + "[[frontend.route]]\nprotocol = \"ssh\"\nalpn = [\"h2\"]\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].protocol: protocol "ssh" can never match a route with sni or alpn`},
	{"route source bad cidr", be + fe + "[[frontend.route]]\nsource = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].source: source[1]: bad CIDR "10.0.0.0/33"`},
	{"route source host bits", be + fe + "[[frontend.route]]\nsource = [\"10.1.2.3/8\"]\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).route[0].source: source[0]: "10.1.2.3/8" has host bits set (did you mean 10.0.0.0/8?)`},
	{"route unknown key", be + fe + "[[frontend.route]]\nsnis = [\"a.example.com\"]\nbackend = \"app\"\n",
		`t.toml:13: unknown key frontend.route.snis (did you mean sni?)`},
	{"route not array of tables", be + fe + "route = 1\n", `t.toml:12: frontend[0] (web).route: expected [[frontend.route]] (an array of tables), got integer`},
	{"route after catch-all", be + fe + "[[frontend.route]]\nbackend = \"app\"\n[[frontend.route]]\nprotocol = \"ssh\"\nbackend = \"app\"\n",
		`t.toml:14: frontend[0] (web): route[1] can never match: route[0] (any) takes every client it would`},
	{"route under wildcard", be + fe + "[[frontend.route]]\nsni = [\"*.Example.com\"]\nbackend = \"app\"\n[[frontend.route]]\nsni = [\"a.example.com\", \"*.b.example.com\"]\nalpn = [\"h2\"]\nbackend = \"app\"\n",
		`t.toml:15: frontend[0] (web): route[1] can never match: route[0] (sni *.example.com) takes every client it would`},
	{"route under wider source", be + fe + "[[frontend.route]]\nsource = [\"10.0.0.0/8\"]\nbackend = \"app\"\n[[frontend.route]]\nprotocol = \"ssh\"\nbackend = \"app\"\n[[frontend.route]]\nsource = [\"10.1.0.0/16\"]\nprotocol = \"http\"\nbackend = \"app\"\n",
		`t.toml:18: frontend[0] (web): route[2] can never match: route[0] (source 10.0.0.0/8) takes every client it would`},
	{"route inline shadowed", be + fe + "route = [{backend = \"app\"}, {sni = [\"a.example.com\"], backend = \"app\"}]\n",
		`t.toml:12: frontend[0] (web): route[1] can never match: route[0] (any) takes every client it would`},
	{"inspect_timeout without routes", be + fe + "inspect_timeout = \"1s\"\n",
		`t.toml:12: frontend[0] (web).inspect_timeout: no route looks at the client's first bytes (sni, alpn or protocol): remove inspect_timeout`},
	{"inspect_timeout source route", be + fe + "inspect_timeout = \"1s\"\n[[frontend.route]]\nsource = [\"10.0.0.0/8\"]\nbackend = \"app\"\n",
		`t.toml:12: frontend[0] (web).inspect_timeout: no route looks at the client's first bytes (sni, alpn or protocol): remove inspect_timeout`},
	{"inspect_timeout zero", be + fe + "inspect_timeout = \"0s\"\n[[frontend.route]]\nprotocol = \"ssh\"\nbackend = \"app\"\n",
		`t.toml:12: frontend[0] (web).inspect_timeout: bad duration "0s": must be greater than 0`},
	{"inspect_timeout bad", be + fe + "inspect_timeout = 5\n[[frontend.route]]\nprotocol = \"ssh\"\nbackend = \"app\"\n",
		`t.toml:12: frontend[0] (web).inspect_timeout: expected a duration string like "30s", got integer`},
	{"inspect_timeout above timeout_client", be + fe + "timeout_client = \"2s\"\ninspect_timeout = \"3s\"\n[[frontend.route]]\nprotocol = \"http\"\nbackend = \"app\"\n",
		`t.toml:13: frontend[0] (web).inspect_timeout: inspect_timeout 3s is longer than timeout_client 2s: the client would time out first`},
	{"on_bad_hello unknown", be + fe + "on_bad_hello = \"drop\"\n[[frontend.route]]\nsni = [\"a.example.com\"]\nbackend = \"app\"\n",
		`t.toml:12: frontend[0] (web).on_bad_hello: unknown value "drop" (want "default" or "close")`},
	{"on_bad_hello type", be + fe + "on_bad_hello = true\n[[frontend.route]]\nsni = [\"a.example.com\"]\nbackend = \"app\"\n",
		`t.toml:12: frontend[0] (web).on_bad_hello: expected string, got boolean`},
	{"on_bad_hello without hello", be + fe + "on_bad_hello = \"close\"\n[[frontend.route]]\nprotocol = \"tls\"\nbackend = \"app\"\n",
		`t.toml:12: frontend[0] (web).on_bad_hello: no route reads the ClientHello (sni or alpn): remove on_bad_hello`},
	{"on_bad_hello default without routes", be + fe + "on_bad_hello = \"default\"\n",
		`t.toml:12: frontend[0] (web).on_bad_hello: no route reads the ClientHello (sni or alpn): remove on_bad_hello`},
	{"no backend, empty routes", be + "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:8080\"]\nroute = []\n", `t.toml:7: frontend[0] (web): missing backend`},
}

func TestParseBad(t *testing.T) {
	if len(badConfigs) < 25 {
		t.Fatalf("only %d rows", len(badConfigs))
	}
	for _, tc := range badConfigs {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tc.toml))
			if err == nil {
				t.Fatalf("parsed, want error containing %q", tc.want)
			}
			if c != nil {
				t.Errorf("config returned along with error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%s\nwant substring:\n%s", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error %T is not an *Error", err)
			}
		})
	}
}

// A problem is reported once, without follow-up errors that only restate
// it, and short keys get no far-fetched suggestions.
func TestNoNoise(t *testing.T) {
	for src, want := range map[string]string{
		"[frontend]\nname = \"web\"\n" + be:                                      "t.toml:1: frontend: expected [[frontend]] (an array of tables), got table",
		"[[frontend]]\nname = \"web\"\nbind = 80\nbackend = \"app\"\n" + be:      "t.toml:3: frontend[0] (web).bind: expected array of strings, got integer",
		"[[frontend]]\nname = \"web\"\nbind = [\"x\"]\nbackend = \"app\"\n" + be: `t.toml:3: frontend[0] (web).bind[0]: bad address "x": not an ip:port`,
		"foo = 1\n" + fe + be: "t.toml:1: unknown key foo",
		// A route that is not a list is not also a frontend without backend.
		be + "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:1\"]\n[frontend.route]\nbackend = \"app\"\n": "t.toml:10: frontend[0] (web).route: expected [[frontend.route]] (an array of tables), got table",
		// A route that lost a condition to an error neither shadows nor
		// is shadowed, and does not make inspect_timeout look unused.
		be + fe + "inspect_timeout = \"1s\"\n[[frontend.route]]\nprotocol = \"smtp\"\nbackend = \"app\"\n[[frontend.route]]\nsni = [\"a..b\"]\nbackend = \"app\"\n[[frontend.route]]\nbackend = \"app\"\n": strings.Join([]string{
			`t.toml:14: frontend[0] (web).route[0].protocol: unknown protocol "smtp" (want tls, http, ssh or none)`,
			`t.toml:17: frontend[0] (web).route[1].sni: sni[0]: server name "a..b" has an empty label`,
		}, "\n"),
	} {
		_, err := Parse("t.toml", []byte(src))
		if err == nil || err.Error() != want {
			t.Errorf("got:\n%v\nwant:\n%s", err, want)
		}
	}
}

// Every problem is reported, in line order, not just the first.
func TestParseReportsAll(t *testing.T) {
	src := "[global]\nmaxconn = 0\nbogus = 1\n" + fe + be + "weight = 700\n"
	_, err := Parse("t.toml", []byte(src))
	if err == nil {
		t.Fatal("parsed")
	}
	want := strings.Join([]string{
		"t.toml:2: global.maxconn: must be at least 1, got 0",
		"t.toml:3: unknown key global.bogus",
		"t.toml:15: backend[0] (app).server[0] (s1).weight: must be between 0 and 256, got 700",
	}, "\n")
	if err.Error() != want {
		t.Errorf("got:\n%s\nwant:\n%s", err, want)
	}
}

func TestErrorCauses(t *testing.T) {
	_, err := Parse("t.toml", []byte("[global]\nworkers = = 1\n"))
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || e.Err == nil {
		t.Fatalf("syntax error: %#v", e)
	}
	_, err = Parse("t.toml", []byte(be+fe+"timeout_client = \"3x\"\n"))
	if !errors.As(err, &e) || e.Line != 12 || e.Err == nil || e.Key != "frontend[0] (web).timeout_client" {
		t.Fatalf("duration error: %#v", e)
	}
}

func parseOK(t *testing.T, src string) *session.Config {
	t.Helper()
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := parseOK(t, fe+be)
	wantG := session.Global{
		Engine: "uring", Workers: runtime.NumCPU(), MaxConn: 20000, MaxConnAuto: true, MaxSock: 0,
		MaxAccept: 64, BufSize: 16384, Buffers: 0, Grace: 10 * time.Second, Splice: true,
		BatchWait: 0, BusyPoll: 50 * time.Microsecond,
	}
	if c.Global != wantG {
		t.Errorf("global = %+v, want %+v", c.Global, wantG)
	}
	if c.Log != (session.Log{Level: "info", Access: true, Target: "stdout", Format: "tcplog"}) {
		t.Errorf("log = %+v", c.Log)
	}
	if c := parseOK(t, "[log]\nformat = \"json\"\n"+fe+be); c.Log.Format != "json" {
		t.Errorf("log.format json read as %q", c.Log.Format)
	}
	f := c.Frontends[0]
	if f.MaxConn != 0 || f.TimeoutClient != 30*time.Second || !f.TCPNoDelay || f.KeepAlive || f.NoLinger {
		t.Errorf("frontend = %+v", f)
	}
	b := c.Backends[0]
	if b.Balance != "roundrobin" || b.TimeoutConnect != 5*time.Second || b.TimeoutServer != 30*time.Second ||
		b.TimeoutTunnel != 0 || b.Retries != 3 || !b.Redispatch {
		t.Errorf("backend = %+v", b)
	}
}

func TestResolved(t *testing.T) {
	c := parseOK(t, `
[global]
engine = "uring"
workers = 3
maxconn = 500
maxsock = 4096
maxaccept = 16
bufsize = 4096
buffers = 1024
grace = "2s"
hard_stop_after = "1h"

[log]
level = "debug"
access = false

[[frontend]]
name = "v6"
bind = ["[::]:80", "0.0.0.0:80", "[fe80::1%eth0]:81"]
backend = "b"
maxconn = 100
timeout_client = "1m"
tcp_nodelay = false
keepalive = true
nolinger = true
accept_proxy = true
allow = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
deny = ["10.6.6.0/24"]
rate_limit = 500
per_source_rate = 20

[[frontend]]
name = "one"
bind = "127.0.0.1:0"
backend = "a"

[[backend]]
name = "a"
timeout_tunnel = "1h"
timeout_queue = "3s"
retries = 0
redispatch = false
send_proxy = "v2"
  [[backend.server]]
  name = "a1"
  address = "[::1]:8080"
  weight = 100
  maxconn = 7
  backup = false

[[backend]]
name = "b"
  [[backend.server]]
  name = "b1"
  address = "10.0.0.1:80"
`)
	g := c.Global
	if g.Workers != 3 || g.MaxConn != 500 || g.MaxSock != 4096 || g.MaxAccept != 16 ||
		g.BufSize != 4096 || g.Buffers != 1024 || g.Grace != 2*time.Second || g.HardStopAfter != time.Hour {
		t.Errorf("global = %+v", g)
	}
	if c.Log.Level != "debug" || c.Log.Access {
		t.Errorf("log = %+v", c.Log)
	}
	v6 := c.Frontends[0]
	wantBinds := []netip.AddrPort{
		netip.MustParseAddrPort("[::]:80"),
		netip.MustParseAddrPort("0.0.0.0:80"),
		netip.MustParseAddrPort("[fe80::1%eth0]:81"),
	}
	if len(v6.Binds) != 3 || v6.Binds[0] != wantBinds[0] || v6.Binds[1] != wantBinds[1] || v6.Binds[2] != wantBinds[2] {
		t.Errorf("binds = %v", v6.Binds)
	}
	if v6.Backend != c.Backends[1] || c.Frontends[1].Backend != c.Backends[0] {
		t.Errorf("backends not resolved")
	}
	if v6.MaxConn != 100 || v6.TimeoutClient != time.Minute || v6.TCPNoDelay || !v6.KeepAlive || !v6.NoLinger {
		t.Errorf("frontend = %+v", v6)
	}
	if got := c.Frontends[1].Binds; len(got) != 1 || got[0] != netip.MustParseAddrPort("127.0.0.1:0") {
		t.Errorf("single-string bind = %v", got)
	}
	if f := c.Frontends[0]; len(f.Allow) != 3 || f.Allow[2] != netip.MustParsePrefix("192.0.2.7/32") ||
		len(f.Deny) != 1 || f.RateLimit != 500 || f.PerSourceRate != 20 || !f.AcceptProxy || c.Backends[0].SendProxy != "v2" {
		t.Errorf("access lists and rates = %v %v %d %d", f.Allow, f.Deny, f.RateLimit, f.PerSourceRate)
	}
	a := c.Backends[0]
	if a.TimeoutTunnel != time.Hour || a.TimeoutQueue != 3*time.Second || a.Retries != 0 || a.Redispatch {
		t.Errorf("backend = %+v", a)
	}
	if a.Servers[0].Name != "a1" || a.Servers[0].Address != netip.MustParseAddrPort("[::1]:8080") ||
		a.Servers[0].MaxConn != 7 || a.Servers[0].Weight != 100 {
		t.Errorf("server = %+v", a.Servers[0])
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int{
		`"16KiB"`: 16384, `"1MiB"`: 1 << 20, `"1024"`: 1024, `"2048B"`: 2048,
		`"4 KiB"`: 4096, `8192`: 8192, `1024`: 1024,
	} {
		c := parseOK(t, "[global]\nbufsize = "+in+"\n"+fe+be)
		if c.Global.BufSize != want {
			t.Errorf("bufsize = %s: got %d, want %d", in, c.Global.BufSize, want)
		}
	}
}

// Port 0 asks the kernel for a port, so two such binds do not collide.
func TestPortZeroBinds(t *testing.T) {
	parseOK(t, be+`
[[frontend]]
name = "a"
bind = ["127.0.0.1:0"]
backend = "app"
[[frontend]]
name = "b"
bind = ["127.0.0.1:0"]
backend = "app"
`)
}

func TestDefault(t *testing.T) {
	c, err := Parse("default.toml", Default())
	if err != nil {
		t.Fatalf("default config: %v", err)
	}
	if len(c.Frontends) != 1 || c.Frontends[0].Name != "web" || c.Frontends[0].Backend == nil ||
		c.Frontends[0].Binds[0] != netip.MustParseAddrPort("127.0.0.1:8080") {
		t.Errorf("frontends = %+v", c.Frontends)
	}
	b := c.Backends[0]
	if b.Name != "demo" || len(b.Servers) != 2 || b.Servers[1].Address != netip.MustParseAddrPort("127.0.0.1:8082") {
		t.Errorf("backend = %+v", b)
	}
	d := Default()
	d[0] = 'X'
	if Default()[0] == 'X' {
		t.Error("Default returns the embedded slice itself")
	}
}

// The commented route example of the default config parses once
// uncommented, its backend renamed to one that exists.
func TestDefaultRouteExample(t *testing.T) {
	lines := strings.Split(string(Default()), "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "# Routes pick") })
	if start < 0 {
		t.Fatal("no route example in default.toml")
	}
	n := 0
	for i := start; i < len(lines) && lines[i] != ""; i++ {
		if l := lines[i]; strings.HasPrefix(l, "# inspect_timeout") || strings.HasPrefix(l, "# on_bad_hello") || strings.HasPrefix(l, "#  ") {
			lines[i] = strings.Replace(l[2:], `"site-a"`, `"demo"`, 1)
			n++
		}
	}
	c, err := Parse("default.toml", []byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("default.toml with its route example: %v", err)
	}
	f := c.Frontends[0]
	if n < 8 || len(f.Routes) != 1 || f.InspectTimeout != 5*time.Second || f.BadHelloClose ||
		f.Routes[0].Backend != c.Backends[0] || len(f.Routes[0].SNI) != 2 || len(f.Routes[0].Source) != 1 {
		t.Errorf("%d lines uncommented; frontend %+v", n, f)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ringproxy.toml")
	if err := os.WriteFile(path, []byte("[global]\nmaxconn = 0\n"+fe+be), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("Load error = %v, want it to name %s:2", err, path)
	}
	_, err = Load(filepath.Join(t.TempDir(), "missing.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestSummary(t *testing.T) {
	c, err := Parse("default.toml", Default())
	if err != nil {
		t.Fatal(err)
	}
	s := Summary(c)
	for _, want := range []string{
		"engine uring", "maxconn 20000", "bufsize 16KiB",
		"frontend web: bind 127.0.0.1:8080 -> backend demo",
		"backend demo: balance roundrobin", "retries 3",
		"server demo1 127.0.0.1:8081", "server demo2 127.0.0.1:8082",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "\n"); n > 24 {
		t.Errorf("summary of the default config is %d lines", n)
	}
}

func TestCheckDefaultsAndValues(t *testing.T) {
	c := parseOK(t, fe+be+"[backend.check]\nkind = \"expect\"\nsend = \"PING\\r\\n\"\nexpect = \"+PONG\"\nfall = 2\n")
	got := c.Backends[0].Check
	if got == nil || got.Kind != "expect" || got.Send != "PING\r\n" || got.Expect != "+PONG" ||
		got.Interval != 2*time.Second || got.Timeout != time.Second || got.Rise != 2 || got.Fall != 2 {
		t.Fatalf("check = %+v", got)
	}
	if c := parseOK(t, fe+be); c.Backends[0].Check != nil {
		t.Fatalf("no [backend.check]: Check = %+v, want nil", c.Backends[0].Check)
	}
}

// hard_stop_after = "" is the schema's spelling of "no limit".
func TestHardStopAfterEmptyIsNone(t *testing.T) {
	c := parseOK(t, "[global]\nhard_stop_after = \"\"\n"+fe+be)
	if c.Global.HardStopAfter != 0 {
		t.Errorf("hard_stop_after \"\" = %v, want 0 (none)", c.Global.HardStopAfter)
	}
}

// routesConfig has every routing key; FuzzParse seeds from it too.
const routesConfig = `
[[frontend]]
name = "edge"
bind = ["127.0.0.1:0"]
timeout_client = "1m"
on_bad_hello = "close"
  [[frontend.route]]
  sni = ["A.Example.com", "*.B.example.COM"]
  alpn = ["h2", "http/1.1"]
  protocol = "tls"
  backend = "a"
  [[frontend.route]]
  protocol = "ssh"
  backend = "b"
  [[frontend.route]]
  source = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
  backend = "a"
  [[frontend.route]]
  backend = "b"

[[frontend]]
name = "sniff"
bind = ["127.0.0.1:0"]
backend = "b"
inspect_timeout = "250ms"
  [[frontend.route]]
  protocol = "none"
  backend = "a"
  [[frontend.route]]
  protocol = "http"
  source = ["::1"]
  backend = "a"

[[frontend]]
name = "lan"
bind = ["127.0.0.1:0"]
backend = ""
timeout_client = "2s"
  [[frontend.route]]
  source = ["::1"]
  backend = "b"
  [[frontend.route]]
  alpn = ["h2"]
  backend = "a"

[[frontend]]
name = "plain"
bind = ["127.0.0.1:0"]
backend = "a"
  [[frontend.route]]
  source = ["10.0.0.0/8"]
  backend = "b"

[[backend]]
name = "a"
  [[backend.server]]
  name = "a1"
  address = "127.0.0.1:9001"

[[backend]]
name = "b"
  [[backend.server]]
  name = "b1"
  address = "127.0.0.1:9002"
`

func TestRoutes(t *testing.T) {
	c := parseOK(t, routesConfig)
	a, b := c.Backends[0], c.Backends[1]
	edge, sniff, lan, plain := c.Frontends[0], c.Frontends[1], c.Frontends[2], c.Frontends[3]

	if edge.Backend != nil || edge.BackendName != "" || len(edge.Routes) != 4 {
		t.Fatalf("edge: backend %v %q, %d routes", edge.Backend, edge.BackendName, len(edge.Routes))
	}
	if edge.InspectTimeout != DefaultInspectTimeout || !edge.BadHelloClose {
		t.Errorf("edge: inspect_timeout %v, BadHelloClose %v", edge.InspectTimeout, edge.BadHelloClose)
	}
	want := []struct {
		rule    route.Rule
		backend *session.Backend
	}{
		{route.Rule{SNI: []string{"a.example.com", "*.b.example.com"}, ALPN: []string{"h2", "http/1.1"}, Protocol: route.TLS}, a},
		{route.Rule{Protocol: route.SSH}, b},
		{route.Rule{Source: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("192.0.2.7/32"),
		}}, a},
		{route.Rule{}, b},
	}
	for i, w := range want {
		r := edge.Routes[i]
		if !reflect.DeepEqual(r.Rule, w.rule) || r.Backend != w.backend || r.BackendName != w.backend.Name {
			t.Errorf("edge route[%d] = %+v -> %q (%p), want %+v -> %q (%p)", i, r.Rule, r.BackendName, r.Backend, w.rule, w.backend.Name, w.backend)
		}
	}

	if sniff.Backend != b || sniff.InspectTimeout != 250*time.Millisecond || sniff.BadHelloClose ||
		sniff.Routes[0].Protocol != route.None || sniff.Routes[1].Protocol != route.HTTP || sniff.Routes[1].Backend != a {
		t.Errorf("sniff = %+v, routes %+v %+v", sniff, sniff.Routes[0], sniff.Routes[1])
	}
	// backend = "" with routes: no default. The default inspection wait
	// is capped by timeout_client.
	if lan.Backend != nil || lan.InspectTimeout != 2*time.Second || lan.BadHelloClose || lan.Routes[1].ALPN[0] != "h2" {
		t.Errorf("lan = %+v", lan)
	}
	// A source-only route needs none of the client's bytes.
	if plain.Backend != a || plain.Inspects() || plain.InspectTimeout != 0 || plain.Routes[0].Backend != b {
		t.Errorf("plain = %+v", plain)
	}
}

func TestRoutesSummary(t *testing.T) {
	s := Summary(parseOK(t, routesConfig))
	for _, want := range []string{
		"frontend edge: bind 127.0.0.1:0 -> backend none: unmatched clients are closed (no-route)\n",
		"    inspect_timeout 5s, on_bad_hello close\n",
		"    route 1: sni a.example.com, *.b.example.com; alpn h2, http/1.1; protocol tls -> a\n",
		"    route 2: protocol ssh -> b\n",
		"    route 3: source 10.0.0.0/8, 2001:db8::/32, 192.0.2.7/32 -> a\n",
		"    route 4: any -> b\n",
		"frontend sniff: bind 127.0.0.1:0 -> backend b when no route matches\n",
		"    inspect_timeout 250ms\n",
		"    route 1: protocol none -> a\n",
		"    route 2: protocol http; source ::1/128 -> a\n",
		"    inspect_timeout 2s, on_bad_hello default\n",
		"frontend plain: bind 127.0.0.1:0 -> backend a when no route matches\n" +
			"    maxconn global only, timeout_client 30s, tcp_nodelay on, keepalive off, nolinger off\n" +
			"    accept_proxy off, rate_limit off, per_source_rate off\n" +
			"    sources: allow all; deny none\n" +
			"    route 1: source 10.0.0.0/8 -> b\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

// everythingConfig turns on every feature the summary reports.
const everythingConfig = `
[global]
reuseport_share = true

[admin]
stats = "127.0.0.1:9000"
socket = "/run/ringproxy/admin.sock"
socket_mode = "0660"
stats_admin = true
stats_admin_allow = ["10.9.0.0/16"]

[log]
target = "syslog"
format = "json"

[[frontend]]
name = "edge"
bind = ["0.0.0.0:443"]
backend = "pg"
accept_proxy = true
allow = ["10.0.0.0/8", "2001:db8::/32"]
deny = ["10.1.0.0/16"]
rate_limit = 2000
per_source_rate = 50

[[backend]]
name = "pg"
send_proxy = "v2"
  [backend.check]
  kind = "http"
  path = "/healthz"
  host = "pg.internal"
  expect_status = 204
  interval = "5s"
  timeout = "2s"
  rise = 3
  fall = 4
  [[backend.server]]
  name = "pg1"
  address = "10.0.2.11:5432"
  weight = 50
  maxconn = 450
  [[backend.server]]
  name = "sorry"
  address = "10.0.2.99:5432"
  backup = true

[[backend]]
name = "redis"
send_proxy = "v1"
  [backend.check]
  kind = "expect"
  send = "PING\r\n"
  expect = "+PONG"
  [[backend.server]]
  name = "r1"
  address = "10.0.1.11:6379"

[[backend]]
name = "plain"
  [backend.check]
  kind = "tcp"
  [[backend.server]]
  name = "p1"
  address = "10.0.3.11:80"
`

// Every line check prints says what will run: checks, backups, PROXY in
// and out, ACLs, rate limits, the admin endpoints, the log target.
func TestSummaryLines(t *testing.T) {
	s := Summary(parseOK(t, everythingConfig))
	for _, want := range []string{
		"        reuseport_share on: binds beside another process listening on an address, sharing its clients\n",
		"admin: stats http://127.0.0.1:9000/ (/, /metrics, /stats.json), its buttons set server state for 10.9.0.0/16; socket /run/ringproxy/admin.sock mode 0660\n",
		"log: level info to stderr, access on to syslog /dev/log (facility daemon), format json\n",
		"frontend edge: bind 0.0.0.0:443 -> backend pg\n",
		"    accept_proxy on (a PROXY v1/v2 header first; ACLs and logs see its source), rate_limit 2000/s, per_source_rate 50/s\n",
		"    sources: allow 10.0.0.0/8, 2001:db8::/32; deny 10.1.0.0/16\n",
		"backend pg: balance roundrobin, 2 servers (1 backup, used only when no primary is usable)\n",
		"    timeout connect 5s, server 30s, tunnel off; retries 3, redispatch on, send_proxy v2\n",
		"    check http: GET /healthz (Host: pg.internal), expect status 204; every 5s, timeout 2s, rise 3, fall 4\n",
		"    server pg1 10.0.2.11:5432 weight 50 maxconn 450\n",
		"    server sorry 10.0.2.99:5432 weight 100 backup\n",
		"backend redis: balance roundrobin, 1 server\n",
		"    timeout connect 5s, server 30s, tunnel off; retries 3, redispatch on, send_proxy v1\n",
		`    check expect: send "PING\r\n", expect "+PONG"; every 2s, timeout 1s, rise 2, fall 3` + "\n",
		"    check tcp: connect; every 2s, timeout 1s, rise 2, fall 3\n",
		"    a server going DOWN or into maint: sessions go on; a primary coming UP: off; failback on\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}

	s = Summary(parseOK(t, fe+be)) + Summary(parseOK(t, fe+be+"[admin]\nstats = \"127.0.0.1:9000\"\n"))
	for _, want := range []string{
		"        reuseport_share off: an address another process listens on is refused\n",
		"        state_file none: a restart starts every server from the config (a reload keeps their state)\n",
		"admin: no stats listener; no admin socket\n",
		"admin: stats http://127.0.0.1:9000/ (/, /metrics, /stats.json), read-only; no admin socket\n",
		"log: level info to stderr, access on to stdout, format tcplog\n",
		"    accept_proxy off, rate_limit off, per_source_rate off\n",
		"    sources: allow all; deny none\n",
		"backend app: balance roundrobin, 1 server\n",
		"    timeout connect 5s, server 30s, tunnel off; retries 3, redispatch on, send_proxy off\n",
		"    check none: every server counts as UP\n",
		"    server s1 127.0.0.1:9000 weight 100\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary of the minimal config lacks %q:\n%s", want, s)
		}
	}
	if s := Summary(parseOK(t, "[log]\naccess = false\n"+fe+be)); !strings.Contains(s, "log: level info to stderr, access off\n") {
		t.Errorf("summary with access off:\n%s", s)
	}
}

// state_file is an absolute path to a file, cleaned; off by default.
func TestStateFile(t *testing.T) {
	if c := parseOK(t, fe+be); c.Global.StateFile != "" {
		t.Errorf("state_file defaults to %q", c.Global.StateFile)
	}
	c := parseOK(t, "[global]\nstate_file = \"/var/lib/ringproxy//state\"\n"+fe+be)
	if c.Global.StateFile != "/var/lib/ringproxy/state" {
		t.Errorf("state_file read as %q", c.Global.StateFile)
	}
	if s := Summary(c); !strings.Contains(s, "        state_file /var/lib/ringproxy/state: servers' admin states, weights and UP/DOWN written on change, read at start and reload\n") {
		t.Errorf("summary with a state file:\n%s", s)
	}
	for v, want := range map[string]string{
		`"state"`:               `t.toml:2: global.state_file: "state" is relative: want an absolute path, such as "/var/lib/ringproxy/state"`,
		`"/var/lib/ringproxy/"`: `t.toml:2: global.state_file: "/var/lib/ringproxy/" names a directory: want a file in it, such as "/var/lib/ringproxy/state"`,
		`"/"`:                   `t.toml:2: global.state_file: "/" names a directory: want a file in it, such as "/var/lib/ringproxy/state"`,
		`7`:                     `t.toml:2: global.state_file: expected string, got integer`,
	} {
		_, err := Parse("t.toml", []byte("[global]\nstate_file = "+v+"\n"+fe+be))
		if err == nil || err.Error() != want {
			t.Errorf("state_file = %s: %v, want %q", v, err, want)
		}
	}
}

func TestReuseportShare(t *testing.T) {
	if c := parseOK(t, fe+be); c.Global.ReuseportShare {
		t.Error("reuseport_share is on by default")
	}
	if c := parseOK(t, "[global]\nreuseport_share = true\n"+fe+be); !c.Global.ReuseportShare {
		t.Error("reuseport_share = true read as off")
	}
	_, err := Parse("t.toml", []byte("[global]\nreuseport_share = \"yes\"\n"+fe+be))
	if want := `t.toml:2: global.reuseport_share: expected boolean, got string`; err == nil || err.Error() != want {
		t.Errorf("reuseport_share = \"yes\": %v, want %q", err, want)
	}
}

func TestFailoverKeys(t *testing.T) {
	c := parseOK(t, "[[backend]]\nname = \"app\"\non_down = \"shutdown-sessions\"\nfailback = false\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n"+fe)
	be := c.Backends[0]
	if be.OnDown != session.OnDownShutdownSessions || be.OnUp != "" || !be.NoFailback {
		t.Errorf("on_down %q, on_up %q, no failback %v", be.OnDown, be.OnUp, be.NoFailback)
	}
	want := "    a server going DOWN or into maint: its sessions are closed; a primary coming UP: off; failback off: new sessions stay on the server that took the last one while it is usable\n"
	if s := Summary(c); !strings.Contains(s, want) {
		t.Errorf("summary lacks %q:\n%s", want, s)
	}
	c = parseOK(t, "[[backend]]\nname = \"app\"\non_up = \"shutdown-backup-sessions\"\n[[backend.server]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n"+fe)
	if be := c.Backends[0]; be.OnUp != session.OnUpShutdownBackupSessions || be.NoFailback {
		t.Errorf("on_up %q, no failback %v", be.OnUp, be.NoFailback)
	}
}

func TestBusyPoll(t *testing.T) {
	if c := parseOK(t, fe+be); c.Global.BusyPoll != 50*time.Microsecond {
		t.Errorf("busy_poll defaults to %v, want 50us", c.Global.BusyPoll)
	}
	if c := parseOK(t, "[global]\nbusy_poll = \"20us\"\n"+fe+be); c.Global.BusyPoll != 20*time.Microsecond {
		t.Errorf("busy_poll = \"20us\" read as %v", c.Global.BusyPoll)
	}
	if c := parseOK(t, "[global]\nbusy_poll = \"0\"\n"+fe+be); c.Global.BusyPoll != 0 {
		t.Errorf("busy_poll = \"0\" read as %v", c.Global.BusyPoll)
	}
	if c := parseOK(t, "[global]\nengine = \"epoll\"\n"+fe+be); c.Global.BusyPoll != 0 {
		t.Errorf("epoll: busy_poll defaults to %v, want 0", c.Global.BusyPoll)
	}
	if c := parseOK(t, "[global]\nengine = \"epoll\"\nbusy_poll = \"0\"\n"+fe+be); c.Global.BusyPoll != 0 {
		t.Errorf("epoll with busy_poll = \"0\": %v", c.Global.BusyPoll)
	}
}
