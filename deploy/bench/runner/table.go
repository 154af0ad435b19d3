package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The per-target table's timed steps (keep-alive, conn-close, bulk both
// ways, the fixed rate) run in BENCH_ROUNDS alternating rounds, as the
// sweep does: one measurement on this VM can be 30 % off, and a verdict
// such as "conn/s ≥ HAProxy's" or "Gbit/s ≥ the best peer" read off one
// run of each target is decided by whichever minute each one caught.
// Round r visits the targets in their order rotated by r, each step with
// a fresh proxy process. The table shows each figure's median over the
// rounds that measured it, a second table its min and max, and
// latest-table-runs.csv every round's figures. The idle step (memory)
// runs once: RSS per held connection does not swing with the host.

// tableRun is one round's figures of one target.
type tableRun struct {
	round int // from 1
	key   string
	row   *row
}

// inRounds runs steps for each of ts in b.s.rounds alternating rounds,
// every round into a fresh row, then sets in each target's row the
// medians of what the rounds set (spreadRounds). b.round names the round
// in the progress lines meanwhile.
func (b *bench) inRounds(ts []*target, steps func(t *target)) {
	rows := map[string][]*row{}
	kept := map[string]*row{}
	for _, t := range ts {
		kept[t.key] = b.results[t.key]
	}
	for r := range b.s.rounds {
		b.round = r + 1
		for _, t := range rotate(ts, r) {
			fresh := newRow()
			b.results[t.key] = fresh
			steps(t)
			rows[t.key] = append(rows[t.key], fresh)
			b.keepRun(r+1, t.key, fresh)
		}
	}
	b.round = 0
	for _, t := range ts {
		b.results[t.key] = kept[t.key]
		spreadRounds(kept[t.key], rows[t.key])
	}
}

// keepRun adds a round's figures to latest-table-runs.csv's line for the
// round and target: the fixed-rate rounds run after the others.
func (b *bench) keepRun(round int, key string, r *row) {
	for _, run := range b.tableRuns {
		if run.round == round && run.key == key {
			for k, c := range r.cells {
				run.row.set(k, c)
			}
			return
		}
	}
	b.tableRuns = append(b.tableRuns, tableRun{round: round, key: key, row: r.clone()})
}

// roundStep is a step's name in the progress lines: with the round when
// there are several.
func (b *bench) roundStep(step string) string {
	if b.round == 0 || b.s.rounds <= 1 {
		return step
	}
	return fmt.Sprintf("%s (round %d/%d)", step, b.round, b.s.rounds)
}

// spreadRounds sets in dst, for every key the rounds set, the median of
// the rounds that measured a number, and for a table figure its min, max
// and how many rounds measured it (key_min, key_max, key_n). A key no
// round measured keeps the first round's word ("failed", "skipped", "-").
func spreadRounds(dst *row, rounds []*row) {
	var keys []string
	seen := map[string]bool{}
	for _, r := range rounds {
		for k := range r.cells {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	for _, k := range keys {
		var vs []float64
		var word cell
		for _, r := range rounds {
			c, ok := r.has(k)
			switch {
			case c.ok:
				vs = append(vs, c.v)
			case ok && word.text == "":
				word = c
			}
		}
		if len(vs) == 0 {
			if word.text == "" {
				word = cell{text: "failed"}
			}
			dst.set(k, word)
			continue
		}
		st := summarize(vs)
		dst.set(k, num(st.med))
		if roundMetric(k) {
			dst.set(k+"_min", num(st.min))
			dst.set(k+"_max", num(st.max))
			dst.set(k+"_n", num(float64(st.n)))
		}
	}
}

// roundFigures are the table's figures measured in rounds: those with a
// min and a max.
var roundFigures = []string{"rps", "p50_ms", "p99_ms", "cpu_us_req", "cps", "cpu_us_conn",
	"gbps_up", "gbps_down", "cpu_s_gb", "cpu_us_req_fixed"}

func roundMetric(key string) bool {
	for _, k := range roundFigures {
		if k == key {
			return true
		}
	}
	return false
}

// spreadMarkdown is the table of each round figure's min and max, with
// the number of rounds that measured it where that is not all of them.
func (b *bench) spreadMarkdown(s *strings.Builder) {
	var ms []metric
	for _, m := range tableMetrics() {
		if roundMetric(m.key) && b.s.steps[stepOf(m.key)] {
			ms = append(ms, m)
		}
	}
	if b.s.rounds <= 1 || len(ms) == 0 {
		return
	}
	fmt.Fprintf(s, "\nMin and max over the %d rounds (the table above: medians; every round in latest-table-runs.csv):\n\n", b.s.rounds)
	b.metricTable(s, ms, func(r *row, m metric) string { return spreadCell(r, m, b.s.rounds) })
}

// spreadCell is "min–max", "(n of R)" when some rounds did not measure it;
// the median's cell when there is no spread (a word, or "-").
func spreadCell(r *row, m metric, rounds int) string {
	lo, hi, n := r.get(m.key+"_min"), r.get(m.key+"_max"), r.get(m.key+"_n")
	if !lo.ok || !hi.ok {
		c, ok := r.has(m.key)
		return m.format(c, ok)
	}
	out := m.format(lo, true) + "–" + m.format(hi, true)
	if n.ok && int(n.v) < rounds {
		out += fmt.Sprintf(" (%d of %d)", int(n.v), rounds)
	}
	return out
}

// stepOf is the BENCH_STEPS word of the step that measures a table figure.
func stepOf(key string) string {
	switch key {
	case "rps", "p50_ms", "p99_ms", "cpu_us_req":
		return "keep-alive"
	case "cps", "cpu_us_conn":
		return "conn-close"
	case "gbps_up", "gbps_down", "cpu_s_gb":
		return "bulk"
	case "cpu_us_req_fixed":
		return "fixed"
	case "kib_conn":
		return "idle"
	}
	return ""
}

// runMetrics are the columns of latest-table-runs.csv: every per-target
// figure but the TLS step's.
func runMetrics() []metric {
	var ms []metric
	for _, m := range metrics {
		if !strings.HasPrefix(m.key, "tls_") {
			ms = append(ms, m)
		}
	}
	return ms
}

// runsCSV writes latest-table-runs.csv: one line per round and target,
// in the order they ran.
func (b *bench) runsCSV(path string) error {
	ms := runMetrics()
	head := []string{"round", "target", "key"}
	for _, m := range ms {
		head = append(head, m.key)
	}
	recs := [][]string{head}
	names := map[string]string{}
	for _, t := range b.targets {
		names[t.key] = t.name
	}
	for _, run := range b.tableRuns {
		rec := []string{strconv.Itoa(run.round), names[run.key], run.key}
		for _, m := range ms {
			c, ok := run.row.has(m.key)
			if !ok {
				rec = append(rec, "") // another round's step (the idle step runs once)
				continue
			}
			if m.table && m.prec > 0 {
				m.prec++
			}
			rec = append(rec, m.format(c, ok))
		}
		recs = append(recs, rec)
	}
	return writeCSV(path, recs)
}

// csvMetrics are latest.csv's columns: every metric, then each round
// figure's min, max and count of rounds.
func csvMetrics() []metric {
	ms := append([]metric(nil), metrics...)
	for _, m := range metrics {
		if roundMetric(m.key) {
			prec := m.prec + min(m.prec, 1) // as csv gives the table's columns
			ms = append(ms, metric{key: m.key + "_min", prec: prec}, metric{key: m.key + "_max", prec: prec},
				metric{key: m.key + "_n", prec: 0})
		}
	}
	return ms
}

// tableGoal is one of issue #15's targets for the table's figures:
// ringproxy uring's median against a reference's, or against a value.
type tableGoal struct {
	figure string
	key    string  // the table figure compared
	ref    string  // the target compared with; "" for a fixed value
	limit  float64 // the ratio (or, without ref, the value) allowed
	higher bool    // higher is better: the ratio must reach the limit
}

// tableGoals are #15's "existing targets", and its keep-alive ones at
// BENCH_CONNS: the best peer for bulk is the better of HAProxy and
// io.Copy in each direction.
func (b *bench) tableGoals() []tableGoal {
	up, down := b.bestPeer("gbps_up"), b.bestPeer("gbps_down")
	return []tableGoal{
		{figure: fmt.Sprintf("keep-alive req/s, %d connections", b.s.conns), key: "rps", ref: "haproxy", limit: 1, higher: true},
		{figure: "keep-alive CPU µs/req", key: "cpu_us_req", ref: "haproxy", limit: cpuLimit(b.s.conns)},
		{figure: "new connections/s", key: "cps", ref: "haproxy", limit: 1, higher: true},
		{figure: "CPU µs per new connection", key: "cpu_us_conn", ref: "haproxy", limit: 0.9},
		{figure: "bulk Gbit/s up", key: "gbps_up", ref: up, limit: 1, higher: true},
		{figure: "bulk Gbit/s down", key: "gbps_down", ref: down, limit: 1, higher: true},
		{figure: "bulk CPU s/GB", key: "cpu_s_gb", ref: "haproxy", limit: 0.5},
		{figure: "KiB per idle connection", key: "kib_conn", limit: 2},
		{figure: "keep-alive CPU µs/req against the epoll engine", key: "cpu_us_req", ref: "epoll", limit: 0.8},
	}
}

// bestPeer is the other proxy with the higher median of key.
func (b *bench) bestPeer(key string) string {
	best, v := "haproxy", math.Inf(-1)
	for _, k := range []string{"haproxy", "iocopy"} {
		if r, ok := b.results[k]; ok && r.get(key).ok && r.get(key).v > v {
			best, v = k, r.get(key).v
		}
	}
	return best
}

// goalsMarkdown is the table of tableGoals, when ringproxy uring ran.
func (b *bench) goalsMarkdown(s *strings.Builder) {
	u, ok := b.results["uring"]
	if !ok {
		return
	}
	names := map[string]string{}
	for _, t := range b.targets {
		names[t.key] = t.name
	}
	s.WriteString("\nIssue #15's targets for these figures (ringproxy uring's medians):\n\n" +
		"| figure | ringproxy uring | against | ratio | target | |\n|---|---:|---|---:|---|---|\n")
	for _, g := range b.tableGoals() {
		if !b.s.steps[stepOf(g.key)] {
			continue
		}
		m := metricByKey(g.key)
		uc := u.get(g.key)
		ref, ratio, want, verdict := "-", "-", "", "not measured"
		rv, measured := g.limit, uc.ok
		if g.ref != "" {
			r, ran := b.results[g.ref]
			if !ran {
				continue
			}
			c := r.get(g.key)
			ref = names[g.ref] + " " + m.format(c, true)
			measured = measured && c.ok && c.v > 0
			if measured {
				rv = uc.v / c.v
				ratio = fmt.Sprintf("%.2f×", rv)
			}
		}
		switch {
		case g.ref == "" && g.higher:
			want = fmt.Sprintf("≥ %g", g.limit)
		case g.ref == "":
			want = fmt.Sprintf("≤ %g", g.limit)
		case g.higher:
			want = fmt.Sprintf("≥ %g×", g.limit)
		default:
			want = fmt.Sprintf("≤ %g×", g.limit)
		}
		if g.ref == "" {
			rv = uc.v
		}
		if measured {
			verdict = "met"
			if g.higher && rv < g.limit || !g.higher && rv > g.limit {
				verdict = "MISSED"
			}
		}
		fmt.Fprintf(s, "| %s | %s | %s | %s | %s | %s |\n", g.figure, m.format(uc, true), ref, ratio, want, verdict)
	}
}

// metricByKey is the metric of a key in metrics.
func metricByKey(key string) metric {
	for _, m := range metrics {
		if m.key == key {
			return m
		}
	}
	return metric{key: key, prec: 2}
}
