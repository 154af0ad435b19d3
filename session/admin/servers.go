package admin

import (
	"cmp"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"ringproxy/session"
	"ringproxy/session/balance"
)

const maxWeight = balance.MaxWeight

// serversStateHeader is HAProxy 2.6's show servers state header, format
// version 1: the format of its server-state-file.
const serversStateHeader = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"

// HAProxy's numbers for what a state line holds (server-t.h, check-t.h).
const (
	opStopped  = 0 // SRV_ST_STOPPED
	opStarting = 1 // SRV_ST_STARTING: up, warming up (slow start)
	opRunning  = 2 // SRV_ST_RUNNING

	admFMaint = 0x01 // SRV_ADMF_FMAINT: set server state maint
	admFDrain = 0x08 // SRV_ADMF_FDRAIN: set server state drain
	admRMaint = 0x20 // SRV_ADMF_RMAINT: maintenance by resolution

	chkConfigured = 0x02 // CHK_ST_CONFIGURED
	chkEnabled    = 0x04 // CHK_ST_ENABLED
	chkPaused     = 0x08 // CHK_ST_PAUSED: maintenance
	chkAgent      = 0x10 // CHK_ST_AGENT: the agent check's state

	resUnknown = 0 // CHK_RES_UNKNOWN: no check finished yet
	resFailed  = 2 // CHK_RES_FAILED
	resPassed  = 3 // CHK_RES_PASSED

	defaultRise = 2 // DEF_RISETIME: an unchecked server's check_health
)

// checkStatusCode is HAProxy's enum healthcheck_status, by the name show
// stat gives (L7OK is HCHK_STATUS_L7OKD).
var checkStatusCode = map[string]int{"UNK": 0, "INI": 1, "L4OK": 6, "L4TOUT": 7, "L4CON": 8, "L7TOUT": 12, "L7RSP": 13, "L7OK": 15, "L7STS": 17, "HANA": 4}

// showServersState is show servers state [BACKEND]: HAProxy's dump, a
// line per server, which HAProxy reads back as a server-state-file.
func showServersState(p *session.Proxy, args []string) string {
	backend := ""
	if len(args) > 0 {
		backend = args[0]
	}
	out, found := serversState(p.Snapshot(), backend)
	if !found {
		return "error: Can't find backend.\n"
	}
	return out
}

// ServersState is show servers state of every backend in s: the text of
// a state file ([global].state_file), format version 1.
func ServersState(s session.Snapshot) string {
	out, _ := serversState(s, "")
	return out
}

// serversState is the dump of backend (every one when ""), and whether
// s has that backend.
func serversState(s session.Snapshot, backend string) (string, bool) {
	var b strings.Builder
	b.WriteString(serversStateHeader)
	found := backend == ""
	for i, be := range s.Backends {
		if backend != "" && backend != be.Name {
			continue
		}
		found = true
		iid := len(s.Frontends) + i + 1 // as show stat numbers proxies
		for j, sv := range be.Servers {
			b.WriteString(serverStateLine(be.Name, iid, j+1, sv, s.Time))
		}
	}
	return b.String(), found
}

func serverStateLine(backend string, iid, sid int, sv session.ServerStats, now time.Time) string {
	ap, _ := netip.ParseAddrPort(sv.Addr)
	addr, fqdn, port := "-", "-", sv.Port // HAProxy's for none; a named server keeps its port
	if ap.IsValid() {
		addr, port = ap.Addr().String(), ap.Port()
	}
	srvRecord := "-"
	if r := sv.Resolution; r != nil {
		fqdn = r.FQDN
		if r.SRV { // HAProxy: the record in srvrecord, the target it gave in srv_fqdn
			fqdn, srvRecord = cmp.Or(r.Target, "-"), r.FQDN
		}
	}
	op := opStopped
	switch {
	case sv.Up && sv.SlowStart != nil:
		op = opStarting
	case sv.Up:
		op = opRunning
	}
	adm := 0
	switch sv.Admin {
	case "maint":
		adm = admFMaint
	case "drain":
		adm = admFDrain
	}
	if r := sv.Resolution; r != nil && r.Maint {
		adm |= admRMaint
	}
	status, result, health, state := checkStatusCode["INI"], resUnknown, defaultRise, 0
	if sv.Dynamic {
		health = 0 // HAProxy sets an unchecked server's health to rise only for the config's
	}
	if c := sv.Check; c != nil {
		status = checkStatusCode[lastCheck(backend, sv).status]
		switch {
		case c.LastCheck.IsZero():
		case c.LastOK:
			result = resPassed
		default:
			result = resFailed
		}
		health, state = checkHealth(sv), chkConfigured|chkEnabled
		if c.Paused {
			health, state = 0, state|chkPaused
		}
	}
	checkPort, checkAddr := uint16(0), "-"
	if c := sv.Check; c != nil {
		checkPort = c.Port
		if c.Address.IsValid() {
			checkAddr = c.Address.String()
		}
	}
	agentState, agentAddr, agentPort := 0, "-", uint16(0)
	if a := sv.Agent; a != nil {
		agentState, agentPort = chkConfigured|chkEnabled|chkAgent, a.Port
		if a.OwnAddress {
			agentAddr = a.Address.String() // HAProxy gives agent-addr only when set
		}
	}
	return fmt.Sprintf("%d %s %d %s %s %d %d %d %d %d %d %d %d %d %d 0 0 %s %d %s 0 %d %s %s %d\n",
		iid, backend, sid, sv.Name, addr, op, adm, sv.UserWeight, sv.InitWeight, int64(now.Sub(sv.LastChange)/time.Second),
		status, result, health, state, agentState, fqdn, port, srvRecord, checkPort, checkAddr, agentAddr, agentPort)
}

// setServer is set server B/S state|weight|addr VALUE.
func setServer(p *session.Proxy, args []string) string {
	if len(args) < 2 {
		return "error: 'set server <srv>' supports 'state', 'weight' and 'addr' here.\n"
	}
	target, what := args[:1], args[1]
	value := ""
	if len(args) > 2 {
		value = args[2]
	}
	switch what {
	case "state":
		st, ok := session.ParseAdminState(value)
		if !ok || len(args) > 3 {
			return "error: 'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
		}
		return onServer(target, func(b, s string) error { return p.SetServerState(b, s, st) })
	case "weight":
		if value == "" {
			return "error: Require <weight> or <weight%>.\n"
		}
		return onServer(target, func(b, s string) error { return setWeight(p, b, s, value) })
	case "addr":
		return setAddr(p, target, args[2:])
	}
	return "error: 'set server <srv>' supports 'state', 'weight' and 'addr' here.\n"
}

// getWeight is get weight B/S: "3 (initial 1)".
func getWeight(p *session.Proxy, args []string) string {
	var cur, initial int
	out := onServer(args, func(b, s string) (err error) { cur, initial, err = p.ServerWeight(b, s); return err })
	if out != "" {
		return out
	}
	return fmt.Sprintf("%d (initial %d)\n", cur, initial)
}

// setWeight sets an absolute weight, or with a '%' one relative to the
// config's, as HAProxy's set weight.
func setWeight(p *session.Proxy, be, srv, arg string) error {
	_, initial, err := p.ServerWeight(be, srv)
	if err != nil {
		return err
	}
	w, err := parseWeight(arg, initial)
	if err != nil {
		return err
	}
	return p.SetServerWeight(be, srv, w)
}

// parseWeight reads HAProxy's <weight> or <weight%>.
func parseWeight(arg string, initial int) (int, error) {
	num, relative := strings.CutSuffix(arg, "%")
	w, err := strconv.Atoi(num)
	switch {
	case err != nil:
		return 0, fmt.Errorf("weight %q: want a number from 0 to 256, or a percentage such as 50%%", arg)
	case relative && w < 0:
		return 0, fmt.Errorf("Relative weight must be positive.")
	case relative:
		return min(initial*min(w, 25600)/100, maxWeight), nil
	case w < 0 || w > maxWeight:
		return 0, fmt.Errorf("Absolute weight can only be between 0 and %d inclusive.", maxWeight)
	}
	return w, nil
}
