package stats

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"ringproxy/session"
)

// The human stats page at /: one snapshot rendered with html/template
// (every name from the config is escaped by it), no external assets.

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"num":         num,
	"bytes":       humanBytes,
	"uptime":      uptime,
	"ago":         ago,
	"limit":       limit,
	"reasons":     reasons,
	"state":       serverState,
	"beState":     backendState,
	"checks":      hasChecks,
	"stamp":       func(t time.Time) string { return t.Format("2006-01-02 15:04:05 MST") },
	"counters":    counterGroups,
	"inc":         func(i int) int { return i + 1 },
	"rate":        rate,
	"since":       since,
	"duration":    func(d session.Seconds) string { return uptime(time.Duration(d).Seconds()) },
	"ms":          millis,
	"lastSession": lastSession,
	"adminStates": func() []string { return []string{"ready", "drain", "maint"} },
}).Parse(pageHTML))

// pageHandler serves the HTML stats page for src.
func pageHandler(src Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		snap := src.Snapshot()
		var buf bytes.Buffer
		if err := pageTmpl.Execute(&buf, pageData{Snapshot: &snap, Admin: pageAdmin(src, r)}); err != nil {
			http.Error(w, "stats page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	}
}

// num writes n with thousands separators: 1,234,567.
func num(v any) string {
	var s string
	switch n := v.(type) {
	case int:
		s = strconv.Itoa(n)
	case int64:
		s = strconv.FormatInt(n, 10)
	case uint64:
		s = strconv.FormatUint(n, 10)
	default:
		return fmt.Sprint(v)
	}
	var b strings.Builder
	if s[0] == '-' {
		b.WriteByte('-')
		s = s[1:]
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// humanBytes writes n in IEC units: 512 B, 1.5 KiB, 20.3 GiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	v, i := float64(n), -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	f := "%.1f %ciB"
	if v >= 100 {
		f = "%.0f %ciB"
	}
	return fmt.Sprintf(f, v, "KMGTPE"[i])
}

// uptime writes seconds as 3d 4h 05m, 2h 07m, 5m 12s or 42s.
func uptime(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	if d < 0 {
		d = 0
	}
	days, h, m, s := int(d/(24*time.Hour)), int(d/time.Hour)%24, int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh %02dm", days, h, m)
	case h > 0:
		return fmt.Sprintf("%dh %02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// ago writes how long before now t was: "4s ago", "never" for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < time.Second {
		return "just now"
	}
	return uptime(d.Seconds()) + " ago"
}

// limit writes a maxconn: "–" when there is none.
func limit(n int) string {
	if n <= 0 {
		return "–"
	}
	return num(n)
}

type kv struct {
	K, V string
	Zero bool
}

// reasons lists the non-zero counts of m, largest first.
func reasons(m map[string]uint64) []kv {
	type e struct {
		k string
		v uint64
	}
	var es []e
	for k, v := range m {
		if v > 0 {
			es = append(es, e{k, v})
		}
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].v != es[j].v {
			return es[i].v > es[j].v
		}
		return es[i].k < es[j].k
	})
	out := make([]kv, len(es))
	for i, x := range es {
		out[i] = kv{K: x.k, V: num(x.v)}
	}
	return out
}

type srvState struct {
	Label, Class string
}

// serverState is the state cell: DOWN, MAINT (drained by an operator),
// DRAIN (up with weight 0) or UP.
func serverState(s session.ServerStats) srvState {
	switch {
	case !s.Up:
		return srvState{"DOWN", "down"}
	case s.Disabled:
		return srvState{"MAINT", "drain"}
	case s.Weight == 0:
		return srvState{"DRAIN", "drain"}
	}
	return srvState{"UP", "up"}
}

func hasChecks(b session.BackendStats) bool {
	for i := range b.Servers {
		if b.Servers[i].Check != nil {
			return true
		}
	}
	return false
}

// backendState is the BACKEND row's state: UP while any of its servers
// takes new sessions.
func backendState(b session.BackendStats) srvState {
	if b.Serving() > 0 || len(b.Servers) == 0 {
		return srvState{"UP", "up"}
	}
	return srvState{"DOWN", "down"}
}

// rate writes sessions per second: whole from 10 (and for none), else
// with one decimal.
func rate(v float64) string {
	if v >= 10 || v == 0 {
		return num(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// since writes how long before now t was, as uptime does.
func since(now, t time.Time) string { return uptime(now.Sub(t).Seconds()) }

// millis writes a check's duration: 0.4 ms, 12 ms.
func millis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	}
	return strconv.FormatInt(int64(math.Round(ms)), 10) + " ms"
}

// lastSession says when a server last got a session.
func lastSession(now, t time.Time) string {
	if t.IsZero() {
		return "no session yet"
	}
	return "last session " + ago(now, t)
}

type counterGroup struct {
	Title string
	Rows  []kv
}

// groupTitles name the page's boxes of process counters, by session.Group.
var groupTitles = [...]string{
	session.GroupAccept:   "Accept",
	session.GroupPauses:   "Listener pauses",
	session.GroupConnects: "Server connects",
	session.GroupEnded:    "Sessions ended",
	session.GroupProxy:    "PROXY header errors",
	session.GroupInspect:  "Inspected (routes)",
	session.GroupOther:    "Other",
}

// counterGroups are the process counters as small name/value tables.
func counterGroups(p session.ProcessStats) []counterGroup {
	groups := make([]counterGroup, len(groupTitles))
	for g := range groups {
		groups[g].Title = groupTitles[g]
	}
	for _, c := range session.ProcessCounters() {
		if c.Group != session.NoGroup {
			groups[c.Group].Rows = append(groups[c.Group].Rows, counterRows(&c, &p.Stats)...)
		}
	}
	return groups[session.NoGroup+1:]
}

// counterRows are one counter's rows: its own, or an array's entries
// sorted by name.
func counterRows(c *session.CounterDesc, s *session.Stats) []kv {
	v := c.Values(s)
	if c.Names == nil {
		return []kv{counterRow(c.Row, c.Unit, v[0])}
	}
	rows := make([]kv, len(v))
	for i, n := range v {
		rows[i] = counterRow(c.Names[i], c.Unit, n)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].K < rows[j].K })
	return rows
}

func counterRow(k string, u session.Unit, v uint64) kv {
	r := kv{K: k, V: num(v), Zero: v == 0}
	switch u {
	case session.UnitBytes:
		r.V = humanBytes(v)
	case session.UnitNanoseconds:
		r.V = strconv.FormatFloat(time.Duration(v).Seconds(), 'f', 1, 64) + " s"
	}
	return r
}
