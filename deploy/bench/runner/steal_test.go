package main

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// fakeSteal makes the guard's meter report the given shares in turn.
func fakeSteal(g *stealGuard, pcts ...float64) {
	g.pause = 0
	g.sample = func() func() float64 {
		pct := pcts[0]
		if len(pcts) > 1 {
			pcts = pcts[1:]
		}
		return func() float64 { return pct }
	}
}

func TestStealGuardMeasure(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name           string
		limit          float64
		retries        int
		steals         []float64
		failAt         int // attempt that fails, -1: none
		kept, attempts int
		again, over    int
	}{
		{"quiet", 5, 2, []float64{0.4}, -1, 0, 1, 0, 0},
		{"at the limit", 5, 2, []float64{5}, -1, 0, 1, 0, 0},
		{"once stolen", 5, 2, []float64{12, 1}, -1, 1, 2, 1, 0},
		{"stolen throughout: the quietest", 5, 2, []float64{12, 7, 30}, -1, 1, 3, 1, 1},
		{"no retries", 5, 0, []float64{12}, -1, 0, 1, 0, 1},
		{"off", 0, 2, []float64{50}, -1, 0, 1, 0, 0},
		{"unknown counts as quiet", 5, 2, []float64{nan}, -1, 0, 1, 0, 0},
		{"a failed retry is kept", 5, 2, []float64{12, 0}, 1, 1, 2, 1, 0},
		{"a failure is not retried", 5, 2, []float64{0}, 0, 0, 1, 0, 0},
	} {
		g := newStealGuard(c.limit, c.retries)
		g.pause = 0
		attempts := 0
		kept := g.measure(func(n int) (float64, bool) {
			attempts++
			if n == c.failAt {
				return nan, false
			}
			return c.steals[n], true
		})
		if kept != c.kept || attempts != c.attempts || g.again != c.again || g.over != c.over ||
			g.extra != c.attempts-1 || g.runs != 1 {
			t.Errorf("%s: kept %d after %d attempts (again %d, over %d, extra %d), want %d after %d (again %d, over %d)",
				c.name, kept, attempts, g.again, g.over, g.extra, c.kept, c.attempts, c.again, c.over)
		}
	}
	g := newStealGuard(5, 2)
	g.runs, g.again, g.extra, g.over = 40, 3, 5, 1
	if l := g.line(); !strings.Contains(l, "more than 5 %") || !strings.Contains(l, "3 of 40 runs measured again, 5 attempts more; 1 stayed over") {
		t.Errorf("line: %q", l)
	}
	if l := newStealGuard(0, 2).line(); !strings.Contains(l, "off") {
		t.Errorf("line when off: %q", l)
	}
}

// A table step the host stole from is run again with a fresh start, and
// the row holds the quietest attempt's figures, its steal and the count.
func TestRunStepStealGuard(t *testing.T) {
	b := &bench{results: map[string]*row{"direct": newRow()}, guard: newStealGuard(5, 2)}
	fakeSteal(b.guard, 20, 8, 30)
	tg := &target{key: "direct", name: "no proxy"}
	n := 0
	b.runStep(tg, "keep-alive", "ka", func(*target, *proc) (string, error) {
		n++
		r := b.results["direct"]
		if _, stale := r.has("ka_requests"); stale {
			t.Errorf("attempt %d starts with the last attempt's ka_requests", n)
		}
		r.set("rps", num(float64(1000*n)))
		r.set("ka_requests", num(1))
		return "ok", nil
	}, "rps")
	r := b.results["direct"]
	if n != 3 || r.get("rps").v != 2000 || r.get("ka_attempts").v != 3 || r.get("ka_host_steal_pct").v != 8 {
		t.Errorf("%d attempts; rps %v, attempts %v, steal %v; want 3, 2000 (the second), 3, 8",
			n, r.get("rps"), r.get("ka_attempts"), r.get("ka_host_steal_pct"))
	}

	// A step without a prefix (memory) is not guarded; a failure is not retried.
	fakeSteal(b.guard, 50)
	n = 0
	b.runStep(tg, "idle conns", "", func(*target, *proc) (string, error) { n++; return "ok", nil }, "kib_conn")
	b.runStep(tg, "conn-close", "close", func(*target, *proc) (string, error) { n++; return "", errors.New("boom") }, "cps")
	if n != 2 || r.get("cps").text != "failed" || r.get("close_attempts").v != 1 {
		t.Errorf("%d runs, cps %v, close_attempts %v: want 2, failed, 1", n, r.get("cps"), r.get("close_attempts"))
	}
}

// The sweep's and the TLS step's set-aside attempts are in their CSVs and
// in no figure; the TLS step still counts their errors.
func TestStealSetAside(t *testing.T) {
	b := &bench{targets: []*target{{key: "uring", name: "ringproxy uring", proxy: true}}}
	k := sweepKey{work: "wrk", conns: 4, pipe: 1}
	for r, v := range []float64{100, 110, 120} {
		b.sweep = append(b.sweep, sweepRec{round: r, key: k, target: "uring", rps: v, p50: 1, p99: 2, cpu: 10, steal: 0.5})
	}
	b.sweep = append(b.sweep, sweepRec{round: 1, key: k, target: "uring", rps: 1, p50: 90, p99: 99, cpu: 50, steal: 14, setAside: true})
	c := b.sweepSummary(k, "uring")
	if c.rps.n != 3 || c.rps.min != 100 || c.p99.max != 2 {
		t.Errorf("summary counts a set-aside attempt: %+v", c)
	}
	path := t.TempDir() + "/s.csv"
	if err := b.sweepCSV(path); err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, path)
	head, last := recs[0], recs[len(recs)-1]
	if head[len(head)-2] != "host_steal_pct" || head[len(head)-1] != "set_aside" ||
		last[len(last)-2] != "14.00" || last[len(last)-1] != "steal" || recs[1][len(head)-1] != "" {
		t.Errorf("csv: %v / %v / %v", head, recs[1], last)
	}

	b.tlsRecs = []tlsRec{
		{round: 0, target: "uring", mode: modePlain, cps: 1000, p50: 1, p99: 2, cpu: 30, conns: 100},
		{round: 0, target: "uring", mode: modeSNI, cps: 1000, p50: 1, p99: 2, cpu: 31, conns: 100},
		{round: 1, target: "uring", mode: modePlain, cps: 1000, p50: 1, p99: 2, cpu: 30, conns: 100},
		{round: 1, target: "uring", mode: modeSNI, cps: 100, p50: 9, p99: 90, cpu: 90, conns: 10, errors: 3, setAside: true},
		{round: 1, target: "uring", mode: modeSNI, cps: 1000, p50: 1, p99: 2, cpu: 31, conns: 100},
	}
	s := b.tlsSummary("uring", modeSNI)
	if s.cpu.n != 2 || s.cpu.max != 31 || s.errors != 3 || s.conns != 210 {
		t.Errorf("tls summary: %+v", s)
	}
	if o := tlsOverhead(b.tlsRecs, "uring"); o.n != 2 || math.Abs(o.max-100.0/30) > 1e-9 {
		t.Errorf("tls overhead counts a set-aside attempt: %+v", o)
	}
}
