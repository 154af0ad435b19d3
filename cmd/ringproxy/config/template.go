package config

import (
	"net/netip"
	"strconv"
	"strings"

	"ringproxy/session"
	"ringproxy/session/balance"
)

// maxTemplateCount bounds server_template's count: every slot is a
// server, with its counters in every worker.
const maxTemplateCount = 1024

// readTemplates reads a backend's [[backend.server_template]] tables,
// HAProxy's server-template: count servers named name1..nameN whose
// addresses fill from one DNS name's answer, an SRV service name
// ("_http._tcp.web.service.consul": targets, ports, weights) or a host
// name with a port ("web.internal:8080": its addresses). The server
// keys given apply to every slot.
func readTemplates(t *table, checked bool, names map[string]string) []*session.Server {
	var out []*session.Server
	for _, tt := range t.list("server_template") {
		tpl, proto := readTemplate(tt, checked)
		if tpl == nil {
			t.bad["server_template"] = true // reported: "no servers" would only be noise
		}
		for i := 1; tpl != nil && i <= tpl.Count; i++ {
			s := *proto
			s.Name = tpl.Name + strconv.Itoa(i)
			s.Template = tpl
			checkDup(tt, names, s.Name, "server")
			out = append(out, &s)
		}
		tt.done()
	}
	return out
}

// readTemplate reads one template and the server its slots copy.
func readTemplate(t *table, checked bool) (*session.Template, *session.Server) {
	tpl := &session.Template{Name: t.name(), Count: t.integer("count", 0, 1, maxTemplateCount)}
	if !t.has("count") {
		t.failHere("count", "missing count (how many servers the answer may fill)")
	}
	if tpl.Name != "" && !validName(tpl.Name+strconv.Itoa(tpl.Count)) {
		t.fail("name", nil, "name %q with count %d makes server names longer than 64", tpl.Name, tpl.Count)
	}
	s := &session.Server{Weight: t.integer("weight", 100, 0, balance.MaxWeight)}
	s.MaxConn = t.integer("maxconn", 0, 0, maxInt)
	s.Backup = t.boolean("backup", false)
	readServerCheck(t, s, checked)
	if v, ok := t.get("address"); !ok || v == "" {
		t.failHere("address", "missing address")
	} else if str := t.str("address", ""); str != "" {
		tpl.FQDN, tpl.SRV, tpl.Port = readTemplateAddr(t, str)
	}
	if tpl.SRV && t.has("weight") && !t.bad["weight"] {
		t.fail("weight", nil, "an SRV template's slots take their records' weights (HAProxy's (weight+255)/256): leave weight out")
	}
	if t.failed() {
		return nil, nil
	}
	s.FQDN = tpl.FQDN
	s.Address = netip.AddrPortFrom(netip.Addr{}, tpl.Port) // SRV: port 0 until a record gives one
	return tpl, s
}

// readTemplateAddr reads a template's address: "_service._proto.name"
// (SRV, no port) or "name:port".
func readTemplateAddr(t *table, s string) (fqdn string, srv bool, port uint16) {
	if strings.HasPrefix(s, "_") && !strings.Contains(s, ":") {
		if !validHostname(s) || strings.Count(s, ".") < 2 {
			t.fail("address", nil, "bad SRV name %q: want _service._proto.name", s)
			return "", false, 0
		}
		return strings.TrimSuffix(strings.ToLower(s), "."), true, 0
	}
	ap, name := readServerAddr(t, s)
	if name == "" && !t.bad["address"] {
		t.fail("address", nil, "bad address %q: a template fills from a DNS name (an SRV name, or name:port), not an IP", s)
	}
	return name, false, ap.Port()
}
