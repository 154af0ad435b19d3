package session

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"ringproxy/session/proxyproto"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// fill sets every integer in *v to a value of its own, times scale: the
// k-th field (embedded structs flattened) k·100, entry i of an array
// field k·100+i, so that resizing an array moves no other value.
func fill(t *testing.T, v any, scale uint64) {
	t.Helper()
	k := uint64(0)
	var walk func(reflect.Value)
	walk = func(f reflect.Value) {
		if f.Kind() == reflect.Struct {
			for i := range f.NumField() {
				walk(f.Field(i))
			}
			return
		}
		k++
		if f.Kind() != reflect.Array {
			set(t, f, k*100*scale)
			return
		}
		for i := range f.Len() {
			set(t, f.Index(i), (k*100+uint64(i))*scale)
		}
	}
	walk(reflect.ValueOf(v).Elem())
}

func set(t *testing.T, f reflect.Value, n uint64) {
	t.Helper()
	switch f.Kind() {
	case reflect.Uint64:
		f.SetUint(n)
	case reflect.Int64:
		f.SetInt(int64(n))
	default:
		t.Fatalf("fill: a %s field: teach fill (and the sums) about it", f.Type())
	}
}

// Every counter field is summed: one without its row in the tables of
// countertable.go would read zero in every output.
func TestSumsCoverEveryField(t *testing.T) {
	var st, st2 Stats
	fill(t, &st, 1)
	fill(t, &st2, 2)
	st2.CurConns, st2.CurQueue, st2.MaxConns = st.CurConns, st.CurQueue, st.MaxConns // gauges: read, not summed
	sum := st
	sum.add(&st)
	if sum != st2 {
		t.Errorf("Stats summed:\n got %+v\nwant %+v", sum, st2)
	}

	var f, f2 FrontendCounters
	fill(t, &f, 1)
	fill(t, &f2, 2)
	fsum := f
	fsum.add(&f)
	if fsum != f2 {
		t.Errorf("FrontendCounters summed:\n got %+v\nwant %+v", fsum, f2)
	}

	var s, s2 ServerCounters
	fill(t, &s, 1)
	fill(t, &s2, 2)
	ssum := s
	ssum.add(&s)
	if ssum != s2 {
		t.Errorf("ServerCounters summed:\n got %+v\nwant %+v", ssum, s2)
	}
}

var plainName = regexp.MustCompile(`^[a-z_]*$`)

// Each row of processCounters is complete for what it shows, and names
// what no other row does.
func TestProcessCountersWellFormed(t *testing.T) {
	keys, metrics := map[string]bool{}, map[string]bool{}
	for _, c := range processCounters {
		var st Stats
		n := len(c.Values(&st))
		switch {
		case (c.at.one == nil) == (c.at.many == nil):
			t.Errorf("%q: wants exactly one of one and many", c.Key)
		case c.at.many != nil && len(c.Names) != n:
			t.Errorf("%q: %d names for %d entries", c.Key, len(c.Names), n)
		case c.at.one != nil && (c.Names != nil || c.Label != ""):
			t.Errorf("%q: a single value with names or a label", c.Key)
		case c.Metric != "" && (c.Key == "" || c.Help == "" || (c.Names != nil) != (c.Label != "")):
			t.Errorf("%q: metric %q wants a key, a help text and, for an array, a label", c.Key, c.Metric)
		case c.Group != NoGroup && (c.Key == "" || (c.Names == nil) == (c.Row == "")):
			t.Errorf("%q: on the page wants a key and a row label unless it is an array", c.Key)
		case c.Key == "" && (c.Metric != "" || c.Group != NoGroup):
			t.Errorf("metric %q: shown without a key", c.Metric)
		}
		if !plainName.MatchString(c.Key + c.Metric) {
			t.Errorf("%q / %q: names are lower case and underscores (MarshalJSON quotes keys as Go does)", c.Key, c.Metric)
		}
		if c.Key != "" && keys[c.Key] || c.Metric != "" && metrics[c.Metric] {
			t.Errorf("%q / %q: named twice", c.Key, c.Metric)
		}
		keys[c.Key], metrics[c.Metric] = true, true
	}
}

// Each summed counter lands under its own /stats.json key and reads back.
func TestProcessStatsJSON(t *testing.T) {
	var st Stats
	fill(t, &st, 1)
	p := &Proxy{cfg: &Config{Global: Global{Engine: "epoll", MaxConn: 500}}, workers: make([]*worker, 3)}
	ps := p.processStats(&st)
	ps.SessionRate, ps.ConnRate = Rate{Cur: 1.5, Max: 9}, Rate{Cur: 2, Max: 10}
	got, err := json.MarshalIndent(ps, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "process.json.golden")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got)+"\n" != string(want) {
		t.Errorf("process stats:\n%s\nwant (testdata/process.json.golden; -update rewrites it):\n%s", got, want)
	}

	var back ProcessStats
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	ps.Parked, ps.Turns, ps.Completions = 0, 0, 0 // not in the JSON
	if back != ps {
		t.Errorf("read back:\n got %+v\nwant %+v", back, ps)
	}
}

// Every reason the parser reports has a counter of its own: a reason
// added to proxyproto without a ProxyReason would be counted as
// not-proxy.
func TestProxyReasonsCoverTheParser(t *testing.T) {
	for _, r := range proxyproto.Reasons() {
		if got := proxyReasonOf(r).String(); got != r {
			t.Errorf("parser reason %q is counted as %q", r, got)
		}
	}
}
