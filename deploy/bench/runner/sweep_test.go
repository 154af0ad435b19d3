package main

import (
	"encoding/csv"
	"encoding/xml"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		in   []float64
		want stat
	}{
		{[]float64{5, 1, 3}, stat{med: 3, min: 1, max: 5, n: 3}},
		{[]float64{4, 1, 3, 10}, stat{med: 3.5, min: 1, max: 10, n: 4}},
		{[]float64{7}, stat{med: 7, min: 7, max: 7, n: 1}},
		{[]float64{nan, 2, nan, 8, 5}, stat{med: 5, min: 2, max: 8, n: 3}},
	} {
		if got := summarize(c.in); got != c.want {
			t.Errorf("summarize(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
	if got := summarize([]float64{nan}); got.n != 0 || !math.IsNaN(got.med) {
		t.Errorf("all NaN: %+v", got)
	}
	if got := summarize(nil); got.n != 0 {
		t.Errorf("empty: %+v", got)
	}
}

func TestRotate(t *testing.T) {
	ts := []string{"direct", "uring", "epoll", "haproxy"}
	want := [][]string{
		{"direct", "uring", "epoll", "haproxy"},
		{"uring", "epoll", "haproxy", "direct"},
		{"epoll", "haproxy", "direct", "uring"},
		{"haproxy", "direct", "uring", "epoll"},
		{"direct", "uring", "epoll", "haproxy"},
	}
	first := map[string]int{}
	for r, w := range want {
		got := rotate(ts, r)
		if !reflect.DeepEqual(got, w) {
			t.Errorf("round %d: %v, want %v", r, got, w)
		}
		first[got[0]]++
	}
	if len(first) != 4 {
		t.Errorf("in 5 rounds every target should run first once at least: %v", first)
	}
	if !reflect.DeepEqual(ts, want[0]) {
		t.Error("rotate changed its input")
	}
	if got := rotate([]string{}, 3); len(got) != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestParseSteps(t *testing.T) {
	all, err := parseSteps("")
	if err != nil || len(all) != len(stepNames) {
		t.Fatalf("default: %v, %v", all, err)
	}
	if s, _ := parseSteps("all"); len(s) != len(stepNames) {
		t.Errorf("all: %v", s)
	}
	s, err := parseSteps("sweep")
	if err != nil || !s["sweep"] || len(s) != 1 || (settings{steps: s}).anyMain() {
		t.Errorf("sweep: %v, %v", s, err)
	}
	s, err = parseSteps(" keep-alive, fixed ")
	if err != nil || !s["keep-alive"] || !s["fixed"] || s["sweep"] || !(settings{steps: s}).anyMain() {
		t.Errorf("keep-alive,fixed: %v, %v", s, err)
	}
	if _, err := parseSteps("swep"); err == nil || !strings.Contains(err.Error(), "sweep") {
		t.Errorf("typo: err = %v", err)
	}
}

func TestSweepPointsAndRows(t *testing.T) {
	cs, err := parseConns("256, 1,4,16,64,4")
	if err != nil || !reflect.DeepEqual(cs, []int{1, 4, 16, 64, 256}) {
		t.Fatalf("parseConns = %v, %v", cs, err)
	}
	if _, err := parseConns("1,x"); err == nil {
		t.Error("x: want an error")
	}
	ws, _ := parseWorkloads("")
	ps := sweepPoints(sweepSettings{conns: cs, workloads: ws, pipe: 16})
	if len(ps) != 11 || ps[5] != (sweepPoint{tool: "redis", conns: 64, pipe: 16}) || ps[6].tool != "wrk" {
		t.Fatalf("points: %v", ps)
	}
	rows := sweepRows(ps)
	if len(rows) != 17 || rows[0] != (sweepKey{"redis get", 1, 1, 0}) || rows[5].workload() != "redis get -P16" ||
		rows[6].work != "redis set" || rows[12].workload() != "wrk keep-alive" {
		t.Fatalf("rows: %v", rows)
	}
	if ws, err := parseWorkloads("wrk"); err != nil || len(sweepPoints(sweepSettings{conns: cs, workloads: ws, pipe: 16})) != 5 {
		t.Errorf("wrk only: %v, %v", ws, err)
	}
	if _, err := parseWorkloads("memcached"); err == nil {
		t.Error("memcached: want an error")
	}
}

func TestRedisN(t *testing.T) {
	// get and set each run n: together they last about the point.
	if n := redisN(20000, 5); n != 50000 {
		t.Errorf("redisN(20000, 5) = %d", n)
	}
	if n := redisN(10, 1); n != 2000 {
		t.Errorf("floor: %d", n)
	}
}

func cellOf(rps, p50, p99, cpu float64) sweepCell {
	one := func(v float64) stat { return stat{med: v, min: v, max: v, n: 1} }
	return sweepCell{rps: one(rps), p50: one(p50), p99: one(p99), cpu: one(cpu)}
}

func TestJudge(t *testing.T) {
	h := cellOf(50000, 0.5, 1.0, 20)
	v, ok := judge(cellOf(50000, 0.5, 1.0, 18), h, 16)
	if !ok || !v.ok || v.cpu != 0.9 {
		t.Errorf("equal and 0.9× CPU at 16: %+v", v)
	}
	v, _ = judge(cellOf(50000, 0.5, 1.0, 18), h, 64)
	if v.ok || !reflect.DeepEqual(v.missed, []string{"CPU"}) {
		t.Errorf("0.9× CPU at 64 (limit 0.8×): %+v", v)
	}
	v, _ = judge(cellOf(49000, 0.6, 0.9, 10), h, 256)
	if v.ok || !reflect.DeepEqual(v.missed, []string{"req/s", "p50"}) {
		t.Errorf("%+v", v)
	}
	if s := v.String(); !strings.HasPrefix(s, "MISS req/s, p50 (req/s 0.98, p50 1.20, p99 0.90, CPU 0.50)") {
		t.Errorf("String = %q", s)
	}
	if _, ok := judge(sweepCell{rps: stat{med: math.NaN()}}, h, 1); ok {
		t.Error("nothing measured: want no verdict")
	}
}

// TestSweepReports fills a sweep by hand and checks that the table, the
// CSV and the SVG come out well-formed.
func TestSweepReports(t *testing.T) {
	b := &bench{s: settings{proxyCPU: 0, loadCPU: 1, steps: map[string]bool{"sweep": true}},
		ss: sweepSettings{rounds: 2, seconds: 2, conns: []int{1, 4}, workloads: sweepWorkloadNames, pipe: 16}}
	b.targets = []*target{
		{key: "direct", name: "no proxy"},
		{key: "uring", name: "ringproxy uring", proxy: true},
		{key: "haproxy", name: "haproxy", proxy: true},
	}
	nan := math.NaN()
	for r := 0; r < 2; r++ {
		for _, k := range sweepRows(sweepPoints(b.ss)) {
			for i, tk := range []string{"direct", "uring", "haproxy"} {
				rec := sweepRec{round: r, pos: i, key: k, target: tk, rps: 1000 * float64(k.conns+r+i),
					p50: 0.1 * float64(k.conns), p99: 0.3 * float64(k.conns+r), cpu: 10 + float64(i), requests: 1000}
				if tk == "direct" {
					rec.cpu = nan
				}
				if tk == "haproxy" && k.conns == 4 && k.work == "wrk" && r == 1 {
					rec = sweepRec{round: r, pos: i, key: k, target: tk, err: "failed: boom", rps: nan, p50: nan, p99: nan, cpu: nan}
				}
				b.sweep = append(b.sweep, rec)
			}
		}
	}
	md := b.sweepMarkdown()
	for _, want := range []string{
		"| workload | conns | no proxy req/s | no proxy p50 | no proxy p99 | ringproxy uring req/s |",
		"| redis get | 1 | 1500 [1000–2000] | 0.100 [0.100–0.100] | 0.450 [0.300–0.600] | 2500 [2000–3000] |",
		"| redis set -P16 | 64 |",
		"| wrk keep-alive | 4 |",
		"| 6000 (1 of 2 rounds) | 0.400 | 1.200 | 12.0 | MISS req/s, p99, CPU (req/s 0.92, p50 1.00, p99 1.13, CPU 0.92) |",
		"| 11.0 [11.0–11.0] | 3500 [3000–4000] |",
		"Targets met at 0 of 8 points",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	path := t.TempDir() + "/s.csv"
	if err := b.sweepCSV(path); err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, path)
	if len(recs) != 1+len(b.sweep) || recs[0][0] != "round" || recs[1][6] != "no proxy" || recs[1][11] != "" {
		t.Fatalf("csv: %d lines, %v / %v", len(recs), recs[0], recs[1])
	}
	svg := b.sweepSVG()
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("svg: %v", err)
			}
			break
		}
	}
	if n := strings.Count(svg, "<polyline"); n != 2*(3+3+2) { // CPU panels: no line for no proxy
		t.Errorf("svg has %d lines, want 16", n)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
