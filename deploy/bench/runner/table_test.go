package main

import (
	"errors"
	"strings"
	"testing"
)

// The table's timed steps run in alternating rounds: each round visits
// the targets in a rotated order, the row holds each figure's median
// with its min, max and count, a failed round counts in none of them, and
// every round's figures are kept for latest-table-runs.csv, the fixed
// rate's with the same round's others.
func TestInRounds(t *testing.T) {
	ts := []*target{{key: "direct", name: "no proxy"}, {key: "uring", name: "ringproxy uring"}}
	b := &bench{results: map[string]*row{"direct": newRow(), "uring": newRow()}, guard: newStealGuard(0, 0)}
	b.s.rounds = 3
	b.results["uring"].set("kib_conn", num(0.3)) // an earlier step's figure stays
	rps := map[string][]float64{"direct": {300, 100, 200}, "uring": {10, 30, 20}}
	var order []string
	b.inRounds(ts, func(tg *target) {
		order = append(order, tg.key)
		b.runStep(tg, "keep-alive", "ka", func(tg *target, _ *proc) (string, error) {
			r := b.results[tg.key]
			v := rps[tg.key][b.round-1]
			if tg.key == "uring" && b.round == 2 {
				return "", errors.New("boom")
			}
			r.set("rps", num(v))
			r.set("ka_requests", num(v*10))
			return "ok", nil
		}, "rps")
	})
	b.inRounds(ts, func(tg *target) {
		b.runStep(tg, "fixed", "fixed", func(tg *target, _ *proc) (string, error) {
			b.results[tg.key].set("cpu_us_req_fixed", num(float64(b.round)))
			return "ok", nil
		}, "cpu_us_req_fixed")
	})
	if got := strings.Join(order, " "); got != "direct uring uring direct direct uring" {
		t.Errorf("visit order %q: want each round rotated by one", got)
	}
	d, u := b.results["direct"], b.results["uring"]
	if d.get("rps").v != 200 || d.get("rps_min").v != 100 || d.get("rps_max").v != 300 || d.get("rps_n").v != 3 ||
		d.get("ka_requests").v != 2000 {
		t.Errorf("direct: rps %v [%v–%v] n %v, requests %v; want the median 200 [100–300] of 3, 2000",
			d.get("rps"), d.get("rps_min"), d.get("rps_max"), d.get("rps_n"), d.get("ka_requests"))
	}
	if u.get("rps").v != 15 || u.get("rps_n").v != 2 || u.get("kib_conn").v != 0.3 || u.get("cpu_us_req_fixed").v != 2 {
		t.Errorf("uring: rps %v of %v rounds, kib_conn %v, fixed %v; want 15 of 2 (one failed), 0.3, 2",
			u.get("rps"), u.get("rps_n"), u.get("kib_conn"), u.get("cpu_us_req_fixed"))
	}
	m := metric{key: "rps", prec: 0}
	if c := spreadCell(u, m, 3); c != "10–20 (2 of 3)" {
		t.Errorf("spread cell %q", c)
	}
	if c := spreadCell(d, m, 3); c != "100–300" {
		t.Errorf("spread cell %q", c)
	}
	if len(b.tableRuns) != 6 {
		t.Fatalf("%d runs kept, want 6 (3 rounds × 2 targets)", len(b.tableRuns))
	}
	for _, run := range b.tableRuns {
		if run.row.get("cpu_us_req_fixed").v != float64(run.round) {
			t.Errorf("round %d %s: fixed %v not with its round", run.round, run.key, run.row.get("cpu_us_req_fixed"))
		}
	}
	if c := b.tableRuns[2].row.get("rps"); b.tableRuns[2].key != "uring" || c.text != "failed" {
		t.Errorf("round 2's uring run: %s rps %v, want failed", b.tableRuns[2].key, c)
	}

	// Every round failed: the word, no spread.
	all := newRow()
	spreadRounds(all, []*row{{cells: map[string]cell{"cps": {text: "failed"}}}, {cells: map[string]cell{"cps": {text: "failed"}}}})
	if c := all.get("cps"); c.ok || c.text != "failed" {
		t.Errorf("cps %v, want failed", c)
	}
	if _, ok := all.has("cps_n"); ok {
		t.Error("a figure no round measured has a spread")
	}

	b.targets = ts
	path := t.TempDir() + "/runs.csv"
	if err := b.runsCSV(path); err != nil {
		t.Fatal(err)
	}
	recs := readCSV(t, path)
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	if len(recs) != 7 || recs[1][col["round"]] != "1" || recs[1][col["rps"]] != "300" ||
		recs[3][col["rps"]] != "failed" || recs[1][col["kib_conn"]] != "" {
		t.Errorf("runs csv: %v", recs)
	}
}

// The table's #15 verdicts compare ringproxy uring's medians with
// HAProxy's, the best peer's (bulk) and the epoll engine's, and skip what
// did not run.
func TestGoalsMarkdown(t *testing.T) {
	set := func(kv ...any) *row {
		r := newRow()
		for i := 0; i < len(kv); i += 2 {
			r.set(kv[i].(string), num(kv[i+1].(float64)))
		}
		return r
	}
	b := &bench{results: map[string]*row{
		"uring":   set("rps", 110.0, "cpu_us_req", 12.0, "cps", 90.0, "cpu_us_conn", 80.0, "gbps_up", 12.0, "gbps_down", 12.0, "cpu_s_gb", 0.2, "kib_conn", 0.3),
		"haproxy": set("rps", 100.0, "cpu_us_req", 16.0, "cps", 100.0, "cpu_us_conn", 100.0, "gbps_up", 11.0, "gbps_down", 11.0, "cpu_s_gb", 0.5),
		"iocopy":  set("gbps_up", 13.0, "gbps_down", 10.0),
		"epoll":   set("cpu_us_req", 14.0),
	}}
	b.targets = []*target{{key: "uring", name: "ringproxy uring"}, {key: "epoll", name: "ringproxy epoll"},
		{key: "haproxy", name: "haproxy"}, {key: "iocopy", name: "go io.Copy"}}
	b.s.conns = 64
	b.s.steps = map[string]bool{"keep-alive": true, "conn-close": true, "bulk": true, "idle": true}
	var s strings.Builder
	b.goalsMarkdown(&s)
	want := []string{
		"| keep-alive req/s, 64 connections | 110 | haproxy 100 | 1.10× | ≥ 1× | met |",
		"| keep-alive CPU µs/req | 12.0 | haproxy 16.0 | 0.75× | ≤ 0.8× | met |",
		"| new connections/s | 90 | haproxy 100 | 0.90× | ≥ 1× | MISSED |",
		"| CPU µs per new connection | 80.0 | haproxy 100.0 | 0.80× | ≤ 0.9× | met |",
		"| bulk Gbit/s up | 12.00 | go io.Copy 13.00 | 0.92× | ≥ 1× | MISSED |",
		"| bulk Gbit/s down | 12.00 | haproxy 11.00 | 1.09× | ≥ 1× | met |",
		"| bulk CPU s/GB | 0.200 | haproxy 0.500 | 0.40× | ≤ 0.5× | met |",
		"| KiB per idle connection | 0.3 | - | - | ≤ 2 | met |",
		"| keep-alive CPU µs/req against the epoll engine | 12.0 | ringproxy epoll 14.0 | 0.86× | ≤ 0.8× | MISSED |",
	}
	for _, w := range want {
		if !strings.Contains(s.String(), w+"\n") {
			t.Errorf("missing %q in\n%s", w, s.String())
		}
	}
	// A step left out has no verdict.
	b.s.steps["bulk"] = false
	s.Reset()
	b.goalsMarkdown(&s)
	if strings.Contains(s.String(), "bulk") {
		t.Errorf("bulk judged though not run:\n%s", s.String())
	}
}
