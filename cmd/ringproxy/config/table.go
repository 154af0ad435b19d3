package config

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// node names one place in the document three ways: key is the indexed
// path the locator understands ("frontend[0].bind"), label is what the
// operator reads ("frontend[0] (web).bind"), plain is the TOML spelling
// without indices ("frontend.bind"), used for unknown keys.
type node struct{ key, label, plain string }

func (n node) child(k string) node {
	return node{joinPath(n.key, k), joinPath(n.label, k), joinPath(n.plain, k)}
}

func (n node) elem(i int) node {
	idx := "[" + strconv.Itoa(i) + "]"
	return node{n.key + idx, n.label + idx, n.plain}
}

// table reads one TOML table against the schema. Every accessor marks its
// key as known, so after the reads done() can report whatever is left as
// unknown without a separate list of valid keys to keep in sync. The
// decoder's own struct mapping is not used because it matches keys
// case-insensitively and does not know which [[array]] element a key came
// from.
type table struct {
	pr   *problems
	at   node
	m    map[string]any
	used map[string]bool
	bad  map[string]bool // keys already reported, to avoid follow-up noise
}

func newTable(pr *problems, at node, m map[string]any) *table {
	return &table{pr: pr, at: at, m: m, used: map[string]bool{}, bad: map[string]bool{}}
}

func (t *table) get(k string) (any, bool) {
	t.used[k] = true
	v, ok := t.m[k]
	return v, ok
}

func (t *table) has(k string) bool {
	_, ok := t.get(k)
	return ok
}

// known marks keys of a section that is rejected as a whole, so that its
// keys are not also reported as unknown.
func (t *table) known(keys ...string) {
	for _, k := range keys {
		t.used[k] = true
	}
}

// fail reports a problem with key k of this table.
func (t *table) fail(k string, cause error, format string, args ...any) {
	t.bad[k] = true
	n := t.at.child(k)
	t.pr.add(n.key, n.label, cause, format, args...)
}

// failed reports whether any key of this table has been reported.
func (t *table) failed() bool { return len(t.bad) > 0 }

// failHere reports a problem with the table itself; at names the key
// whose line is preferred if it exists.
func (t *table) failHere(k string, format string, args ...any) {
	t.pr.add(t.at.child(k).key, t.at.label, nil, format, args...)
}

func (t *table) unsupported(k, format string, args ...any) {
	t.fail(k, nil, format+" is not supported yet", args...)
}

func (t *table) typeErr(k, want string, v any) {
	t.fail(k, nil, "expected %s, got %s", want, typeName(v))
}

func (t *table) str(k, def string) string {
	v, ok := t.get(k)
	if !ok {
		return def
	}
	s, ok := v.(string)
	if !ok {
		t.typeErr(k, "string", v)
		return def
	}
	return s
}

func (t *table) boolean(k string, def bool) bool {
	v, ok := t.get(k)
	if !ok {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		t.typeErr(k, "boolean", v)
		return def
	}
	return b
}

// integer reads an int in [lo, hi]; out of range reports and returns def.
func (t *table) integer(k string, def, lo, hi int64) int {
	v, ok := t.get(k)
	if !ok {
		return int(def)
	}
	n, ok := v.(int64)
	if !ok {
		t.typeErr(k, "integer", v)
		return int(def)
	}
	if err := checkRange(n, lo, hi); err != nil {
		t.fail(k, nil, "%v", err)
		return int(def)
	}
	return int(n)
}

func checkRange(n, lo, hi int64) error {
	switch {
	case n >= lo && n <= hi:
		return nil
	case hi == math.MaxInt32 && n < lo:
		return fmt.Errorf("must be at least %d, got %d", lo, n)
	}
	return fmt.Errorf("must be between %d and %d, got %d", lo, hi, n)
}

// duration reads a duration string; positive demands > 0, else >= 0.
func (t *table) duration(k string, def time.Duration, positive bool) time.Duration {
	v, ok := t.get(k)
	if !ok {
		return def
	}
	s, ok := v.(string)
	if !ok {
		t.fail(k, nil, "expected a duration string like \"30s\", got %s", typeName(v))
		return def
	}
	d, err := parseDuration(s, positive)
	if err != nil {
		t.fail(k, errCause(err), "%v", err)
		return def
	}
	return d
}

// size reads a byte size (integer or "16KiB") in [lo, hi].
func (t *table) size(k string, def, lo, hi int64) int {
	v, ok := t.get(k)
	if !ok {
		return int(def)
	}
	n, err := parseSizeValue(v)
	if err == nil && (n < lo || n > hi) {
		err = fmt.Errorf("must be between %s and %s, got %s", formatSize(lo), formatSize(hi), formatSize(n))
	}
	if err != nil {
		t.fail(k, errCause(err), "%v", err)
		return int(def)
	}
	return int(n)
}

// strs reads an array of strings; a lone string is taken as a one-element
// array since that is the obvious meaning of bind = "0.0.0.0:80".
func (t *table) strs(k string) []string {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	if s, ok := v.(string); ok {
		return []string{s}
	}
	arr, ok := v.([]any)
	if !ok {
		t.typeErr(k, "array of strings", v)
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			t.bad[k] = true
			n := t.at.child(k).elem(i)
			t.pr.add(n.key, n.label, nil, "expected string, got %s", typeName(e))
			continue
		}
		out = append(out, s)
	}
	return out
}

// sub returns the sub-table k, or an empty one if it is absent or not a
// table (reported), so callers can read defaults from it either way.
func (t *table) sub(k string) *table {
	n := t.at.child(k)
	v, ok := t.get(k)
	m, isMap := v.(map[string]any)
	if ok && !isMap {
		t.typeErr(k, "table", v)
	}
	return newTable(t.pr, n, m)
}

// list returns the elements of the array of tables k. Inline arrays of
// inline tables are accepted too: TOML means the same by both.
func (t *table) list(k string) []*table {
	n := t.at.child(k)
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	var out []*table
	switch arr := v.(type) {
	case []map[string]any:
		for i, m := range arr {
			out = append(out, newTable(t.pr, n.elem(i), m))
		}
	case []any:
		for i, e := range arr {
			m, ok := e.(map[string]any)
			if !ok {
				t.bad[k] = true
				t.pr.add(n.elem(i).key, n.elem(i).label, nil, "expected table, got %s", typeName(e))
				continue
			}
			out = append(out, newTable(t.pr, n.elem(i), m))
		}
	default:
		t.fail(k, nil, "expected [[%s]] (an array of tables), got %s", n.plain, typeName(v))
	}
	return out
}

// name reads the required name key and, when valid, adds it to the label
// so that later messages say which element they are about.
func (t *table) name() string {
	if v, ok := t.get("name"); !ok || v == "" {
		t.failHere("name", "missing name")
		return ""
	}
	name := t.str("name", "")
	if name == "" {
		return "" // not a string: reported by str
	}
	if !validName(name) {
		t.fail("name", nil, "bad name %q: use 1 to 64 letters, digits, '.', '_' or '-'", name)
		return ""
	}
	t.at.label += " (" + name + ")"
	return name
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBare(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

// done reports every key of the table that no accessor asked for.
func (t *table) done() {
	keys := make([]string, 0, len(t.m))
	for k := range t.m {
		if !t.used[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		what := "key"
		switch t.m[k].(type) {
		case map[string]any, []map[string]any:
			what = "table"
		}
		n := t.at.child(k)
		t.pr.add(n.key, "", nil, "unknown %s %s%s", what, n.plain, t.suggest(k))
	}
}

// suggest offers the closest known key, since most unknown keys are typos.
func (t *table) suggest(k string) string {
	// Two edits turn any short key into another one ("foo" into "log").
	limit := 1
	if len(k) >= 6 {
		limit = 2
	}
	best, bestD := "", limit+1
	for known := range t.used {
		if d := editDistance(k, known); d < bestD || d == bestD && known < best {
			best, bestD = known, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // not worth the work: no typo is that long
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "datetime"
	case map[string]any:
		return "table"
	case []map[string]any:
		return "array of tables"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}
