package main

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestParseRates(t *testing.T) {
	if ps, err := parseRates("75, 25,50,25"); err != nil || !reflect.DeepEqual(ps, []int{25, 50, 75}) {
		t.Errorf("parseRates = %v, %v", ps, err)
	}
	for _, bad := range []string{"", "0", "25,x", "300"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestRatePoints(t *testing.T) {
	ws, _ := parseWorkloads("")
	ss := sweepSettings{conns: []int{1, 64}, workloads: ws, pipe: 16, rates: []int{25, 50, 75}, rateConns: 64}
	ps := sweepPoints(ss)
	if len(ps) != 2+1+2+3 || ps[5] != (sweepPoint{tool: "rate", conns: 64, pipe: 1, pct: 25}) || ps[5].label() != "rate 25% c=64" {
		t.Fatalf("points: %v", ps)
	}
	// The rate points are not rows of the sweep table, which has its own.
	if rows := sweepRows(ps); len(rows) != 3+3+2 {
		t.Errorf("sweep rows: %v", rows)
	}
	rows := rateRows(ps)
	if len(rows) != 3 || rows[2] != (sweepKey{"rate", 64, 1, 75}) || rows[0].workload() != "fixed rate 25 %" {
		t.Errorf("rate rows: %v", rows)
	}
	ws, _ = parseWorkloads("rate")
	if ps := sweepPoints(sweepSettings{conns: []int{1}, workloads: ws, rates: []int{50}, rateConns: 8}); len(ps) != 1 || ps[0].conns != 8 {
		t.Errorf("rate only: %v", ps)
	}

	b := &bench{}
	if v := b.offered(ps[0]); !math.IsNaN(v) {
		t.Errorf("no peak: offered %v, want NaN", v)
	}
	b.sweepPeak = 53289
	if v := b.offered(sweepPoint{tool: "rate", pct: 75}); v != 39900 {
		t.Errorf("75 %% of 53289: %v, want 39900 (rounded down to 100)", v)
	}
	if v := b.offered(sweepPoint{tool: "wrk", conns: 64}); !math.IsNaN(v) {
		t.Errorf("a wrk point offers %v", v)
	}
}

func TestJudgeRate(t *testing.T) {
	h := cellOf(20000, 0.2, 1.0, 30)
	v, ok := judgeRate(cellOf(19990, 0.2, 1.0, 27), h, 20000)
	if !ok || !v.ok || v.cpu != 0.9 {
		t.Errorf("equal latency, 0.9× CPU, rate held: %+v", v)
	}
	v, _ = judgeRate(cellOf(18000, 0.3, 0.9, 28), h, 20000)
	if v.ok || !reflect.DeepEqual(v.missed, []string{"rate", "p50", "CPU"}) {
		t.Errorf("%+v", v)
	}
	if s := v.String(); s != "MISS rate, p50, CPU (held 0.90, p50 1.50, p99 0.90, CPU 0.93)" {
		t.Errorf("String = %q", s)
	}
	if _, ok := judgeRate(cellOf(20000, 0.2, 1, 27), h, math.NaN()); ok {
		t.Error("no offered rate: want no verdict")
	}
}

// TestRateReports fills the rate points by hand: their table under the
// sweep's, and their CSV lines with the offered rate.
func TestRateReports(t *testing.T) {
	b := &bench{s: settings{steps: map[string]bool{"sweep": true}},
		ss:        sweepSettings{rounds: 2, seconds: 2, conns: []int{1}, workloads: []string{"rate"}, rates: []int{25, 75}, rateConns: 64},
		sweepPeak: 40000, sweepPeakWhy: "set by BENCH_SWEEP_PEAK"}
	b.targets = []*target{
		{key: "direct", name: "no proxy"},
		{key: "uring", name: "ringproxy uring", proxy: true},
		{key: "haproxy", name: "haproxy", proxy: true},
	}
	for r := range 2 {
		for _, k := range rateRows(sweepPoints(b.ss)) {
			offered := b.offered(sweepPoint{tool: "rate", pct: k.pct})
			for i, tk := range []string{"direct", "uring", "haproxy"} {
				rec := sweepRec{round: r, pos: i, key: k, target: tk, offered: offered, rps: offered - float64(10*i),
					p50: 0.1 + 0.01*float64(i), p99: 1, cpu: 20 + float64(r) + float64(i), requests: 1000}
				if tk == "direct" {
					rec.cpu = math.NaN()
				}
				b.sweep = append(b.sweep, rec)
			}
		}
	}
	md := b.sweepMarkdown()
	for _, want := range []string{
		"### Latency at fixed rates",
		"a fraction of 40000 req/s, set by BENCH_SWEEP_PEAK",
		"| rate | offered req/s | no proxy req/s | no proxy p50 | no proxy p99 | ringproxy uring req/s |",
		"| 25 % | 10000 | 10000 [10000–10000] | 0.100 [0.100–0.100] | 1.000 [1.000–1.000] | 9990 [9990–9990] | 0.110 [0.110–0.110] | 1.000 [1.000–1.000] | 21.5 [21.0–22.0] |",
		"| 75 % | 30000 |",
		"| MISS CPU (held 1.00, p50 0.92, p99 1.00, CPU 0.96) |",
		"Targets met at 0 of 2 rates",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| fixed rate") || strings.Contains(md, "| workload |") {
		t.Errorf("a sweep table with the rate points alone:\n%s", md)
	}
	path := t.TempDir() + "/s.csv"
	if err := b.sweepCSV(path); err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, path)
	if recs[0][5] != "offered_rps" || recs[1][2] != "rate" || recs[1][5] != "10000" || recs[1][8] != "10000.0" {
		t.Errorf("csv: %v / %v", recs[0], recs[1])
	}
}
