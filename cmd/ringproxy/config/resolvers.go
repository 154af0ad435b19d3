package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"ringproxy/session"
	"ringproxy/session/resolve"
)

// DefaultResolvConf is where [resolvers] takes its nameservers from when
// it lists none.
const DefaultResolvConf = "/etc/resolv.conf"

// readResolvers reads [resolvers]: HAProxy's resolvers section, its
// defaults where it has them (hold valid 10s, hold nx 30s, timeout retry
// 1s, resolve_retries 3, accepted_payload_size 512). It returns nil when
// the file has no such table; build then gives named servers the
// defaults.
func readResolvers(root *table) *session.Resolvers {
	if !root.has("resolvers") {
		return nil
	}
	t := root.sub("resolvers")
	def := resolve.Defaults()
	r := &session.Resolvers{Config: resolve.Config{
		Nameservers: readNameservers(t),
		Timeout:     t.duration("timeout", def.Timeout, true),
		Retries:     t.integer("retries", int64(def.Retries+1), 1, 100) - 1,
		HoldValid:   t.duration("hold_valid", def.HoldValid, true),
		HoldNX:      t.duration("hold_nx", def.HoldNX, true),
		TTLMin:      t.duration("ttl_min", def.TTLMin, true),
		TTLMax:      t.duration("ttl_max", def.TTLMax, true),
		PayloadSize: uint16(t.integer("accepted_payload_size", int64(def.PayloadSize), 512, 65535)),
	}}
	if len(r.Nameservers) == 0 && !t.bad["nameservers"] {
		r.ResolvConf = DefaultResolvConf
	}
	if r.TTLMax < r.TTLMin && !t.bad["ttl_min"] && !t.bad["ttl_max"] {
		t.fail("ttl_max", nil, "ttl_max %s is below ttl_min %s", r.TTLMax, r.TTLMin)
	}
	t.done()
	return r
}

// defaultResolvers is [resolvers] with nothing set.
func defaultResolvers() *session.Resolvers {
	return &session.Resolvers{Config: resolve.Defaults(), ResolvConf: DefaultResolvConf}
}

// readNameservers reads resolvers.nameservers: IPs, each on port 53
// unless it says another ("10.0.0.53", "[2001:db8::53]:5353").
func readNameservers(t *table) []netip.AddrPort {
	var out []netip.AddrPort
	for i, s := range t.strs("nameservers") {
		ap, err := parseNameserver(s)
		if err != nil {
			t.bad["nameservers"] = true
			n := t.at.child("nameservers").elem(i)
			t.pr.add(n.key, n.label, nil, "%v", err)
			continue
		}
		out = append(out, ap)
	}
	if t.has("nameservers") && len(out) == 0 && !t.bad["nameservers"] {
		t.fail("nameservers", nil, "empty: list nameservers, or leave the key out to use %s", DefaultResolvConf)
	}
	return out
}

func parseNameserver(s string) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		return ap, fmt.Errorf("bad nameserver %q: want an IP, or IP:port (IPv6 in brackets)", s)
	case ap.Port() == 0:
		return ap, fmt.Errorf("bad nameserver %q: port 0", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// serverAddr reads a server's address: an IP literal with a port, or a
// DNS name with one ("app1.internal:8080"), which Start resolves. It
// returns the address (only its port for a name) and the name.
func readServerAddr(t *table, s string) (netip.AddrPort, string) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			t.fail("address", nil, "bad address %q: port 0 cannot be connected to", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ""
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		t.fail("address", err, "bad address %q: want IP:port or name:port (IPv6 in brackets)", s)
		return netip.AddrPort{}, ""
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		t.fail("address", nil, "bad address %q: port %q: want 1 to 65535", s, portStr)
		return netip.AddrPort{}, ""
	}
	if _, err := netip.ParseAddr(host); err == nil || !validHostname(host) {
		t.fail("address", nil, "bad address %q: %q is neither an IP address nor a DNS name", s, host)
		return netip.AddrPort{}, ""
	}
	return netip.AddrPortFrom(netip.Addr{}, uint16(port)), strings.TrimSuffix(strings.ToLower(host), ".")
}

// validHostname says whether h is a DNS name a resolver can be asked
// for: dot-separated labels of letters, digits, '-' and '_' (SRV's
// _service._proto), each 1 to 63 bytes, 253 in all.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// readInitAddr reads init_addr: HAProxy's ordered list of ways to a
// named server's first address, as a "libc,none" string or an array.
// "last" needs a state file, which this build has not.
func readInitAddr(t *table, def []string) []string {
	if !t.has("init_addr") {
		return def
	}
	var items []string
	for _, s := range t.strs("init_addr") {
		for _, part := range strings.Split(s, ",") {
			items = append(items, strings.TrimSpace(part))
		}
	}
	out := make([]string, 0, len(items))
	for _, m := range items {
		switch m {
		case session.InitLibc, session.InitNone:
		case session.InitLast:
			if !t.pr.stateFile {
				t.fail("init_addr", nil, "init_addr \"last\" needs state_file: the address it takes is the one [global] state_file saved")
				continue
			}
		default:
			ip, err := netip.ParseAddr(m)
			if err != nil {
				t.fail("init_addr", nil, "unknown init_addr method %q (want last, libc, none or an IP address)", m)
				continue
			}
			m = ip.Unmap().String()
		}
		out = append(out, m)
	}
	if len(out) == 0 && !t.bad["init_addr"] {
		t.fail("init_addr", nil, "empty: give libc, none or an IP address, or leave it out (libc)")
	}
	return out
}

// DefaultInitAddr is init_addr's default: the system resolver at start.
// (HAProxy's is "last,libc"; here "last" is asked for, since it needs
// state_file.)
var DefaultInitAddr = []string{session.InitLibc}
