package admin

import (
	"errors"
	"fmt"
	"strings"

	"ringproxy/session"
)

// Run executes one command line against p and returns its answer: lines
// ending with a newline, or nothing for a command that succeeded and has
// nothing to say, as HAProxy's set commands. The socket follows each
// answer with an empty line, as HAProxy's CLI does. An answer that begins
// with "error: " is a failure (ctl exits 1); after it comes HAProxy's own
// message where HAProxy has one.
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
		return showServersState(p, f[3:])
	case match(f, "show", "sess"):
		return showSess(p, f[2:])
	case match(f, "shutdown", "session") && len(f) <= 3:
		return shutdownSession(p, f[2:])
	case match(f, "shutdown", "sessions", "server") && len(f) <= 4:
		return onServer(f[3:], func(b, s string) error { _, err := p.ShutdownSessions(b, s); return err })
	case match(f, "disable", "server") && len(f) <= 3:
		return onServer(f[2:], func(b, s string) error { return p.SetServerState(b, s, session.AdminMaint) })
	case match(f, "enable", "server") && len(f) <= 3:
		return onServer(f[2:], func(b, s string) error { return p.SetServerState(b, s, session.AdminReady) })
	case match(f, "add", "server"):
		return addServer(p, f[2:])
	case match(f, "del", "server") && len(f) <= 3:
		return delServer(p, f[2:])
	case match(f, "set", "server"):
		return setServer(p, f[2:])
	case match(f, "get", "weight") && len(f) <= 3:
		return getWeight(p, f[2:])
	case match(f, "set", "weight") && len(f) <= 4:
		if len(f) < 4 {
			return "error: Require <weight> or <weight%>.\n"
		}
		return onServer(f[2:3], func(b, s string) error { return setWeight(p, b, s, f[3]) })
	case match(f, "disable", "frontend") && len(f) <= 3:
		return onFrontend(p, f[2:], false)
	case match(f, "enable", "frontend") && len(f) <= 3:
		return onFrontend(p, f[2:], true)
	}
	return fmt.Sprintf("error: unknown command %q; try help\n", line)
}

const help = `help                             this list
reload                           re-read the config file and apply it without dropping a connection
show info                        process, as HAProxy 2.6 gives it (Name, Uptime, CurrConns, ...)
show info human                  process: engine, workers, sessions, uptime; control listeners
show stat                        HAProxy 2.6's CSV: per frontend a FRONTEND row; per backend its servers, then BACKEND
show stat IID|PROXY TYPE SID     rows of one proxy, types (1 frontends, 2 backends, 4 servers, ORed) and server; -1: any
show stat human                  one line per frontend, route and server, CSV
show routes                      each frontend's routes in order: match, backend, sessions taken
show servers state [BACKEND]     HAProxy's server state dump (version 1): one line per server
show sess [ID]                   current sessions, HAProxy's show sess line, with ringproxy's state and bytes
shutdown session ID              close the session show sess names ID
shutdown sessions server B/S     close every session of server S of backend B
add server B/S IP:PORT [weight W] [maxconn N] [backup] [check]
                                 a new server, in maint until enabled (backends balanced by source or static-rr refuse)
del server B/S                   delete a server in maint that no session holds
set server B/S state STATE       ready; drain (no new sessions, checks go on); maint (no new sessions, checks paused, DOWN)
set server B/S weight W[%]       as set weight
set server B/S addr IP [port P]  new sessions go to IP (and port P); those on the old address go on; checks follow
disable server B/S               set server B/S state maint
enable server B/S                set server B/S state ready
get weight B/S                   current weight and the config's: "3 (initial 1)"
set weight B/S W[%]              weight 0..256 for new sessions, or a percentage of the config's weight
disable frontend F               its sockets stay bound but refuse clients; its sessions go on
enable frontend F                listen again
CMD1; CMD2; ...                  several commands on one line, answered in turn
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

// onServer runs do on the server args[0] names ("backend/server") and
// answers nothing if it worked, HAProxy's message if it did not.
func onServer(args []string, do func(be, srv string) error) string {
	if len(args) == 0 {
		return "error: Require 'backend/server'.\n"
	}
	be, srv, ok := strings.Cut(args[0], "/")
	if !ok || be == "" || srv == "" {
		return "error: Require 'backend/server'.\n"
	}
	if err := do(be, srv); err != nil {
		return failure(err)
	}
	return ""
}

// failure answers err in HAProxy's words where it has them.
func failure(err error) string {
	switch {
	case errors.Is(err, session.ErrNoBackend):
		return "error: No such backend.\n"
	case errors.Is(err, session.ErrNoServer):
		return "error: No such server.\n"
	case errors.Is(err, session.ErrNoFrontend):
		return "error: No such frontend.\n"
	case errors.Is(err, session.ErrNoSession):
		return "error: No such session (use 'show sess').\n"
	}
	return "error: " + err.Error() + "\n"
}

// onFrontend is disable/enable frontend.
func onFrontend(p *session.Proxy, args []string, enable bool) string {
	if len(args) == 0 {
		return "error: A frontend name is expected.\n"
	}
	err := p.SetFrontendEnabled(args[0], enable)
	switch {
	case errors.Is(err, session.ErrUnchanged) && enable:
		return "All sockets are already enabled.\n"
	case errors.Is(err, session.ErrUnchanged):
		return "All sockets are already disabled.\n"
	case err != nil:
		return failure(err)
	}
	return ""
}
