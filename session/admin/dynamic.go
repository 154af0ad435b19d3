package admin

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"ringproxy/session"
)

// addServer is add server B/S ADDR:PORT [weight N] [maxconn N] [backup]
// [check], answered in HAProxy 2.6's words. The server starts in
// maintenance, as HAProxy's do: `enable server B/S` puts it to work.
func addServer(p *session.Proxy, args []string) string {
	be, ns, msg := ParseAddServer(args)
	if msg != "" {
		return "error: " + msg + "\n"
	}
	if err := p.AddServer(be, ns); err != nil {
		return addFailure(err)
	}
	return "New server registered.\n"
}

// ParseAddServer reads add server's arguments (B/S IP:PORT [keywords]),
// or says what is wrong with them in HAProxy's words. A state file
// keeps a server added at runtime as these arguments (AddServerArgs).
func ParseAddServer(args []string) (backend string, ns session.NewServer, msg string) {
	if len(args) == 0 {
		return "", ns, "Require 'backend/server'."
	}
	be, name, ok := strings.Cut(args[0], "/")
	if !ok || be == "" || name == "" {
		return "", ns, "Require 'backend/server'."
	}
	if len(args) < 2 {
		return "", ns, "'server' expects <name> and <addr>[:<port>] as arguments."
	}
	ap, err := netip.ParseAddrPort(args[1])
	if err != nil || ap.Port() == 0 {
		return "", ns, fmt.Sprintf("invalid address '%s': want IP:PORT (a name is resolved only for servers of the config).", args[1])
	}
	ns = session.NewServer{Name: name, Address: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Weight: defaultWeight}
	if msg := parseServerKeywords(&ns, args[2:]); msg != "" {
		return "", ns, msg
	}
	return be, ns, ""
}

// AddServerArgs is the add server command line that recreates sv, a
// server added at runtime, as it was added: its initial weight, maxconn,
// backup (its runtime weight and state are in its state line).
func AddServerArgs(backend string, sv session.ServerStats) string {
	s := fmt.Sprintf("%s/%s %s weight %d", backend, sv.Name, sv.Addr, sv.InitWeight)
	if sv.MaxConn > 0 {
		s += fmt.Sprintf(" maxconn %d", sv.MaxConn)
	}
	if sv.Backup {
		s += " backup"
	}
	return s
}

// defaultWeight is a new server's weight without `weight`: the config's
// default (100), so that it gets as much as a server declared without
// one. HAProxy's is 1, its config default too.
const defaultWeight = 100

func parseServerKeywords(ns *session.NewServer, kw []string) string {
	for i := 0; i < len(kw); i++ {
		switch k := kw[i]; k {
		case "backup":
			ns.Backup = true
		case "check":
			ns.Check = true
		case "weight", "maxconn":
			if i+1 == len(kw) {
				return fmt.Sprintf("'%s' expects an integer argument.", k)
			}
			i++
			n, err := strconv.Atoi(kw[i])
			if err != nil {
				return fmt.Sprintf("'%s' expects an integer argument.", k)
			}
			if k == "weight" {
				if n < 0 || n > maxWeight {
					return fmt.Sprintf("weight of server %s is not within 0 and %d (%d)..", ns.Name, maxWeight, n)
				}
				ns.Weight = n
			} else {
				if n < 0 {
					return fmt.Sprintf("'maxconn' of server %s must be positive or zero (%d).", ns.Name, n)
				}
				ns.MaxConn = n
			}
		default:
			return fmt.Sprintf("unknown keyword '%s'.", k)
		}
	}
	return ""
}

func addFailure(err error) string {
	switch {
	case errors.Is(err, session.ErrNoBackend):
		return "error: No such backend.\n"
	case errors.Is(err, session.ErrStaticBalance):
		return "error: Backend must use a dynamic load balancing to support dynamic servers.\n"
	case errors.Is(err, session.ErrServerExists):
		return "error: Already exists a server with the same name in backend.\n"
	case errors.Is(err, session.ErrNoCheck):
		return "error: 'check': the backend has no [backend.check], so its servers are not checked.\n"
	}
	return "error: " + err.Error() + ".\n"
}

// delServer is del server B/S, answered as HAProxy does.
func delServer(p *session.Proxy, args []string) string {
	var err error
	out := onServer(args, func(b, s string) error { err = p.DelServer(b, s); return err })
	switch {
	case out == "":
		return "Server deleted.\n"
	case errors.Is(err, session.ErrNotInMaint):
		return "error: Only servers in maintenance mode can be deleted.\n"
	case errors.Is(err, session.ErrServerBusy):
		return "error: Server still has connections attached to it, cannot remove it.\n"
	}
	return out
}
