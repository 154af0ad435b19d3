package admin

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"ringproxy/session"
)

// setAddr is set server B/S addr ADDR [port PORT], answered in HAProxy
// 2.6's words (srv_update_addr_port): what changed or did not, then
// "by 'stats socket command'". As HAProxy does, a valid address is
// applied even when the port that follows it is not; such an answer is
// a failure all the same.
func setAddr(p *session.Proxy, target, args []string) string {
	if len(args) == 0 {
		return "error: set server <b>/<s> addr requires an address and optionally a port.\n"
	}
	var out string
	if bad := onServer(target, func(be, srv string) error { out = applyAddr(p, be, srv, args); return nil }); bad != "" {
		return bad
	}
	return out
}

func applyAddr(p *session.Proxy, be, srv string, args []string) string {
	const by = " by '" + session.ByStatsSocket + "'\n"
	cur, err := p.ServerAddr(be, srv)
	if err != nil {
		return failure(err)
	}
	ip, err := netip.ParseAddr(args[0])
	if err != nil || ip.Zone() != "" {
		return "error: Invalid addr '" + args[0] + "'" + by
	}
	ip = ip.Unmap()
	var msg []string
	failed := false
	next := cur
	if ip == cur.Addr() {
		msg = append(msg, "no need to change the addr")
	} else {
		was := "-" // a named server without an address yet, as show servers state says
		if cur.Addr().IsValid() {
			was = cur.Addr().String()
		}
		msg = append(msg, fmt.Sprintf("IP changed from '%s' to '%s'", was, ip))
		next = netip.AddrPortFrom(ip, cur.Port())
	}
	if len(args) >= 2 && args[1] == "port" {
		arg := ""
		if len(args) >= 3 {
			arg = args[2]
		}
		switch port, why := parsePort(arg); {
		case why != "":
			msg, failed = append(msg, why), true
		case port == cur.Port():
			msg = append(msg, "no need to change the port")
		default:
			msg = append(msg, fmt.Sprintf("port changed from '%d' to '%d'", cur.Port(), port))
			next = netip.AddrPortFrom(next.Addr(), port)
		}
	}
	if next != cur {
		if _, err := p.SetServerAddr(be, srv, next); err != nil {
			return failure(err)
		}
	}
	out := strings.Join(msg, ", ") + by
	if failed {
		return "error: " + out
	}
	return out
}

// parsePort reads set server addr's PORT, or says why it cannot be one,
// in HAProxy's words. HAProxy takes 0 (the client's port) and wraps
// numbers above 65535; ringproxy connects to a port of its own and
// refuses both. A sign asks HAProxy for a port map, which ringproxy has
// not.
func parsePort(arg string) (uint16, string) {
	if strings.HasPrefix(arg, "+") || strings.HasPrefix(arg, "-") {
		return 0, "can't change <port> to port map: ringproxy maps no ports, give the port itself"
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > 65535 {
		return 0, "problem converting port '" + arg + "' to an int"
	}
	return uint16(n), ""
}
