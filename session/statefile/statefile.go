// Package statefile keeps [global].state_file: HAProxy's
// server-state-file (format version 1), the text `show servers state`
// prints. It writes the file whenever what it holds changes (off the
// worker loops, a burst of changes coalesced into one write, atomically),
// and reads it at start and at reload so that an operator's drain,
// maint and weights, and what the checks found, outlive the process.
//
// The text is session/admin's: one formatter for the socket's dump and
// the file, so HAProxy reads what ringproxy writes and the other way
// round. Lines are matched to the config by backend and server name;
// their ids, which move when the config is edited, are ignored, as
// HAProxy does when the names match.
package statefile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"ringproxy/session"
	"ringproxy/session/admin"
)

// Version is the only format version there is (HAProxy's
// SRV_STATE_FILE_VERSION).
const Version = 1

// HAProxy's limits for a version 1 line: 20 fields, up to 25 with the
// optional ones (srv_use_ssl, check and agent endpoints), and at most
// 2000 bytes (SRV_STATE_LINE_MAXLEN).
const (
	minFields   = 20
	maxFields   = 25
	maxLineSize = 2000
)

// maxFileSize bounds what Parse reads: 2000-byte lines for far more
// servers than a config holds. A larger file is not a state file.
const maxFileSize = 64 << 20

// The fields of a line, by index (HAProxy's srv_state_parse_line).
const (
	fBackendID = iota
	fBackend
	fServerID
	fServer
	fAddr
	fOpState
	fAdminState
	fUWeight
	fIWeight
	fLastChange
	fCheckStatus
	fCheckResult
	fCheckHealth
	fCheckState
	fAgentState
	fBackendForcedID
	fServerForcedID
	fFQDN
	fPort
	fSRVRecord
)

// HAProxy's numbers (server-t.h, check-t.h) the parser validates.
const (
	opStopped  = 0 // SRV_ST_STOPPED: DOWN
	opStopping = 3 // SRV_ST_STOPPING, the highest state

	admFMaint = 0x01 // SRV_ADMF_FMAINT: set server state maint
	admCMaint = 0x04 // SRV_ADMF_CMAINT: HAProxy's "disabled" in the config
	admFDrain = 0x08 // SRV_ADMF_FDRAIN: set server state drain
	// Inherited states HAProxy recomputes rather than reads: IMAINT,
	// IDRAIN, RMAINT, FQDN_CHANGED.
	admInherited = 0x02 | 0x10 | 0x20 | 0x40

	maxWeight      = 256 // SRV_UWGHT_MAX
	checkStatusMax = 20  // HCHK_STATUS_SIZE - 1
	checkResultMax = 4   // CHK_RES_CONDPASS
	// CHK_ST_INPROGRESS, CONFIGURED, ENABLED, PAUSED, AGENT.
	checkStateBits = 0x1f
)

// Line is one server of a state file.
type Line struct {
	Num   int // in the file, from 1 (the version line)
	Saved session.SavedServer
}

// File is a parsed state file.
type File struct {
	Name  string
	Lines []Line
	// Duplicates are lines naming a server an earlier line named; the
	// first wins, as in HAProxy (a file edited by hand).
	Duplicates []Line
	// Added holds the servers an operator added at runtime, as their
	// add server arguments in a comment (AddedPrefix) HAProxy skips, by
	// backend and server name.
	Added map[[2]string]session.NewServer
}

// AddedPrefix begins the comment line that keeps a server added at
// runtime: the rest is its add server arguments.
const AddedPrefix = "# ringproxy: add server "

// Error is a state file that cannot be used, at the line that says so:
// nothing of the file applies.
type Error struct {
	File string
	Line int // 0: the file as a whole
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ErrEmpty is an empty file: no state, nothing wrong.
var ErrEmpty = errors.New("empty state file")

// Parse reads a state file; name names it in errors. Like HAProxy's
// loader it refuses the whole file at the first line it cannot read
// (a missing or unknown version, a line cut short or too long, a field
// missing or out of range), so that a torn or foreign file never applies
// in part. Blank lines and comments (#) are skipped.
func Parse(name string, r io.Reader) (*File, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxFileSize+1), maxLineSize+1)
	f := &File{Name: name}
	seen := map[[2]string]int{}
	read := 0
	for num := 1; ; num++ {
		raw, err := readLine(br)
		read += len(raw)
		if read > maxFileSize {
			return nil, &Error{name, num, fmt.Sprintf("file larger than %d MiB: not a state file", maxFileSize>>20)}
		}
		if err == io.EOF && len(raw) == 0 {
			if num == 1 {
				return nil, fmt.Errorf("%s: %w", name, ErrEmpty)
			}
			return f, nil
		}
		if err != nil && err != io.EOF {
			return nil, &Error{name, num, err.Error()}
		}
		if raw[len(raw)-1] != '\n' {
			return nil, &Error{name, num, "line cut short (no newline at its end): a torn write?"}
		}
		line := raw[:len(raw)-1]
		if num == 1 {
			if string(line) != strconv.Itoa(Version) {
				return nil, &Error{name, num, fmt.Sprintf("first line %q: want the format version, %d", clip(line), Version)}
			}
			continue
		}
		if rest, ok := bytes.CutPrefix(line, []byte(AddedPrefix)); ok {
			be, ns, msg := admin.ParseAddServer(strings.Fields(string(rest)))
			if msg != "" {
				return nil, &Error{name, num, "server added at runtime: " + msg}
			}
			if f.Added == nil {
				f.Added = map[[2]string]session.NewServer{}
			}
			f.Added[[2]string{be, ns.Name}] = ns
			continue
		}
		fields := bytes.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' }) // HAProxy's separators
		if len(fields) == 0 || fields[0][0] == '#' {
			continue
		}
		sv, msg := parseFields(fields)
		if msg != "" {
			return nil, &Error{name, num, msg}
		}
		l := Line{Num: num, Saved: sv}
		key := [2]string{sv.Backend, sv.Server}
		if _, dup := seen[key]; dup {
			f.Duplicates = append(f.Duplicates, l)
			continue
		}
		seen[key] = num
		f.Lines = append(f.Lines, l)
	}
}

// readLine reads one line with its newline, refusing one longer than
// HAProxy's limit.
func readLine(br *bufio.Reader) ([]byte, error) {
	raw, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(raw) > maxLineSize {
		return nil, fmt.Errorf("line longer than %d bytes", maxLineSize)
	}
	return raw, err
}

// parseFields reads one server's line, or says what is wrong with it.
func parseFields(f [][]byte) (session.SavedServer, string) {
	var sv session.SavedServer
	if len(f) < minFields || len(f) > maxFields {
		return sv, fmt.Sprintf("%d fields, want %d to %d (format version %d)", len(f), minFields, maxFields, Version)
	}
	n := make([]int64, len(f))
	for _, i := range []int{fBackendID, fServerID, fOpState, fAdminState, fUWeight, fIWeight, fLastChange, fCheckStatus,
		fCheckResult, fCheckHealth, fCheckState, fAgentState, fBackendForcedID, fServerForcedID, fPort} {
		v, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil {
			return sv, fmt.Sprintf("field %d (%s) %q: not a number", i+1, fieldNames[i], clip(f[i]))
		}
		n[i] = v
	}
	adm := n[fAdminState] &^ admInherited
	switch {
	case n[fOpState] < opStopped || n[fOpState] > opStopping:
		return sv, bad(f, fOpState)
	case adm < 0 || !validAdmin(adm):
		return sv, bad(f, fAdminState)
	case n[fUWeight] < 0 || n[fUWeight] > maxWeight:
		return sv, bad(f, fUWeight)
	case n[fIWeight] < 0 || n[fIWeight] > maxWeight:
		return sv, bad(f, fIWeight)
	case n[fCheckStatus] < 0 || n[fCheckStatus] > checkStatusMax:
		return sv, bad(f, fCheckStatus)
	case n[fCheckResult] < 0 || n[fCheckResult] > checkResultMax:
		return sv, bad(f, fCheckResult)
	case n[fCheckState]&^checkStateBits != 0 || n[fAgentState]&^checkStateBits != 0:
		return sv, bad(f, fCheckState)
	case n[fBackendForcedID]&^1 != 0 || n[fServerForcedID]&^1 != 0:
		return sv, bad(f, fBackendForcedID)
	case n[fPort] < 0 || n[fPort] > 65535:
		return sv, bad(f, fPort)
	}
	sv.Backend, sv.Server = string(f[fBackend]), string(f[fServer])
	switch {
	case adm&admFMaint != 0:
		sv.Admin = session.AdminMaint
	case adm&admFDrain != 0:
		sv.Admin = session.AdminDrain
	}
	sv.Weight, sv.InitWeight = int(n[fUWeight]), int(n[fIWeight])
	sv.Down = n[fOpState] == opStopped
	if a := string(f[fAddr]); a != "-" {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return sv, fmt.Sprintf("field %d (srv_addr) %q: not an IP address or \"-\"", fAddr+1, clip(f[fAddr]))
		}
		sv.Addr = netip.AddrPortFrom(ip, uint16(n[fPort]))
	}
	return sv, ""
}

// validAdmin is HAProxy's list of admin states a line may hold once
// the inherited ones are masked off.
func validAdmin(adm int64) bool {
	switch adm {
	case 0, admFMaint, admCMaint, admCMaint | admFMaint, admCMaint | admFDrain, admFDrain:
		return true
	}
	return false
}

var fieldNames = [...]string{"be_id", "be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state",
	"srv_uweight", "srv_iweight", "srv_time_since_last_change", "srv_check_status", "srv_check_result",
	"srv_check_health", "srv_check_state", "srv_agent_state", "bk_f_forced_id", "srv_f_forced_id", "srv_fqdn",
	"srv_port", "srvrecord"}

func bad(f [][]byte, i int) string {
	return fmt.Sprintf("field %d (%s) %q: out of range", i+1, fieldNames[i], clip(f[i]))
}

// clip shortens what an error quotes of a garbage line.
func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
