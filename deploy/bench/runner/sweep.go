package main

// The concurrency sweep (issue #15): real clients, redis-benchmark and wrk,
// at 1 to 256 connections through every target, and rategen at fixed
// fractions of HAProxy's peak (sweep_rate.go), in alternating rounds, with
// the median, min and max over the rounds of every figure.

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sweepPoint is one measurement of the sweep: one tool run at one
// concurrency. A redis point runs `redis-benchmark -t get,set`, which
// yields two rows (get and set); a wrk or rate point one row.
type sweepPoint struct {
	tool  string // "redis" | "wrk" | "rate"
	conns int
	pipe  int // redis-benchmark -P; 1 = no pipelining
	pct   int // rate: the offered rate, in % of the reference peak
}

func (p sweepPoint) label() string {
	if p.tool == "rate" {
		return fmt.Sprintf("rate %d%% c=%d", p.pct, p.conns)
	}
	s := fmt.Sprintf("%s c=%d", p.tool, p.conns)
	if p.pipe > 1 {
		s += fmt.Sprintf(" P=%d", p.pipe)
	}
	return s
}

// sweepKey names one row of the sweep table.
type sweepKey struct {
	work  string // "redis get", "redis set", "wrk", "rate"
	conns int
	pipe  int
	pct   int // rate: % of the reference peak
}

func (k sweepKey) workload() string {
	if k.work == "rate" {
		return fmt.Sprintf("fixed rate %d %%", k.pct)
	}
	if k.pipe > 1 {
		return fmt.Sprintf("%s -P%d", k.work, k.pipe)
	}
	if k.work == "wrk" {
		return "wrk keep-alive"
	}
	return k.work
}

// sweepRec is one raw figure set: one row, one target, one round.
type sweepRec struct {
	round, pos int // pos: the target's place in the round's visiting order
	key        sweepKey
	target     string
	err        string  // "" when measured
	rps        float64 // rate: the rate achieved
	offered    float64 // rate: the rate offered
	p50, p99   float64 // ms
	cpu        float64 // µs per request, NaN for no proxy
	requests   int64   // of this row's test
	n          int     // redis-benchmark -n, per test
	use        cpuUse  // the proxy's, over the whole tool run (both redis tests)
	wall       float64 // s, the tool run
	steal      float64 // % of all CPUs' time the host took during the tool run; NaN: unknown
	setAside   bool    // an attempt the steal guard measured again: in the CSV, in no figure
}

type sweepSettings struct {
	seconds   int      // BENCH_SWEEP_SECONDS: length of a point
	rounds    int      // BENCH_ROUNDS
	conns     []int    // BENCH_SWEEP_CONNS
	workloads []string // BENCH_SWEEP_WORKLOADS: redis, redis-pipe, wrk, rate
	pipe      int      // the pipelined redis point's -P (at 64 connections)
	rates     []int    // BENCH_SWEEP_RATES: the rate points, % of the reference peak
	rateConns int      // BENCH_CONNS: rategen's connections
	peak      float64  // BENCH_SWEEP_PEAK: the reference peak; 0 = HAProxy's, measured
}

const pipeConns = 64 // the pipelined redis point's connections

var sweepWorkloadNames = []string{"redis", "redis-pipe", "wrk", "rate"}

func parseConns(s string) ([]int, error) {
	return parseInts("BENCH_SWEEP_CONNS", s, 1, 10000, "a connection count", "connection count")
}

// parseInts reads a comma list of integers in [lo, hi], sorted and
// without repeats; what and whats name one element in the errors.
func parseInts(name, s string, lo, hi int, what, whats string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%s: %q is not %s (%d-%d)", name, f, what, lo, hi)
		}
		if !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	if len(ns) == 0 {
		return nil, fmt.Errorf("%s names no %s", name, whats)
	}
	sort.Ints(ns)
	return ns, nil
}

func parseWorkloads(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" || s == "all" {
		return sweepWorkloadNames, nil
	}
	var ws []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(sweepWorkloadNames, f) {
			return nil, fmt.Errorf("BENCH_SWEEP_WORKLOADS: unknown %q (known: %s)", f, strings.Join(sweepWorkloadNames, ", "))
		}
		if !slices.Contains(ws, f) {
			ws = append(ws, f)
		}
	}
	return ws, nil
}

// sweepPoints lists one round's points: redis at every connection count,
// the pipelined redis point, wrk at every connection count, then the
// fixed rates.
func sweepPoints(ss sweepSettings) []sweepPoint {
	var ps []sweepPoint
	has := func(w string) bool { return slices.Contains(ss.workloads, w) }
	if has("redis") {
		for _, c := range ss.conns {
			ps = append(ps, sweepPoint{tool: "redis", conns: c, pipe: 1})
		}
	}
	if has("redis-pipe") && ss.pipe > 1 {
		ps = append(ps, sweepPoint{tool: "redis", conns: pipeConns, pipe: ss.pipe})
	}
	if has("wrk") {
		for _, c := range ss.conns {
			ps = append(ps, sweepPoint{tool: "wrk", conns: c, pipe: 1})
		}
	}
	if has("rate") {
		for _, pct := range ss.rates {
			ps = append(ps, sweepPoint{tool: "rate", conns: ss.rateConns, pipe: 1, pct: pct})
		}
	}
	return ps
}

// sweepRows lists the sweep table's rows in order: redis get (plain, then
// pipelined), redis set, wrk. The rate points have a table of their own
// (rateRows).
func sweepRows(ps []sweepPoint) []sweepKey {
	var ks []sweepKey
	for _, work := range []string{"redis get", "redis set", "wrk"} {
		for _, p := range ps {
			if p.tool != "rate" && (p.tool == "wrk") == (work == "wrk") {
				ks = append(ks, sweepKey{work: work, conns: p.conns, pipe: p.pipe})
			}
		}
	}
	return ks
}

// rotate returns the order in which round r visits the targets: the list
// rotated left by r, so each target takes each place in turn and none
// always runs first or right after the same neighbour.
func rotate[T any](ts []T, r int) []T {
	n := len(ts)
	out := make([]T, 0, n)
	for i := range n {
		out = append(out, ts[(i+r)%n])
	}
	return out
}

// stat is a figure's median, min and max over the rounds that measured it.
type stat struct {
	med, min, max float64
	n             int
}

// summarize ignores NaN (rounds that did not measure the figure).
func summarize(vs []float64) stat {
	var xs []float64
	for _, v := range vs {
		if !math.IsNaN(v) {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return stat{med: math.NaN(), min: math.NaN(), max: math.NaN()}
	}
	sort.Float64s(xs)
	n := len(xs)
	med := xs[n/2]
	if n%2 == 0 {
		med = (xs[n/2-1] + xs[n/2]) / 2
	}
	return stat{med: med, min: xs[0], max: xs[n-1], n: n}
}

// sweepTargets: the targets the sweep visits, those of BENCH_TARGETS but
// the io.Copy proxy unless BENCH_TARGETS names it (issue #15 compares no
// proxy, both engines and HAProxy; io.Copy would add a quarter to the time).
func (b *bench) sweepTargets() []*target {
	var ts []*target
	for _, t := range b.targets {
		if t.key == "iocopy" && !contains(strings.Split(b.s.only, ","), "iocopy") {
			continue
		}
		ts = append(ts, t)
	}
	return ts
}

// sweepCount is the number of tool runs of the whole sweep.
func (b *bench) sweepCount() int {
	return b.ss.rounds * len(sweepPoints(b.ss)) * len(b.sweepTargets())
}

// runSweep runs every round: in each, every point, and at each point every
// target in the round's rotated order, each with a fresh proxy process.
func (b *bench) runSweep() {
	ts := b.sweepTargets()
	ps := sweepPoints(b.ss)
	if len(ts) == 0 || len(ps) == 0 {
		return
	}
	total := b.sweepCount()
	fmt.Printf("bench: sweep: %d rounds × %d points × %d targets = %d runs of ~%d s, about %s\n",
		b.ss.rounds, len(ps), len(ts), total, b.ss.seconds, sweepEstimate(total, b.ss.seconds).Round(time.Minute))
	start := time.Now()
	for r := 0; r < b.ss.rounds; r++ {
		order := rotate(ts, r)
		for _, p := range ps {
			for pos, t := range order {
				b.sweepRun(r, pos, p, t)
			}
		}
		done := (r + 1) * len(ps) * len(ts)
		left := time.Duration(float64(time.Since(start)) / float64(done) * float64(total-done))
		fmt.Printf("bench: sweep round %d of %d done in %s; about %s left\n", r+1, b.ss.rounds,
			time.Since(start).Round(time.Second), left.Round(time.Second))
	}
}

// sweepEstimate: a point's length plus about 0.6 s of proxy start, stop
// and TIME_WAIT flush.
func sweepEstimate(runs, seconds int) time.Duration {
	return time.Duration(runs) * (time.Duration(seconds)*time.Second + 600*time.Millisecond)
}

// sweepRun measures one point on one target and records its rows: those
// of the attempt the steal guard keeps, and the others set aside.
func (b *bench) sweepRun(round, pos int, pt sweepPoint, t *target) {
	b.step++
	var tries [][]sweepRec
	kept := b.guard.measure(func(n int) (float64, bool) {
		recs, measured := b.sweepAttempt(round, pos, pt, t, n)
		tries = append(tries, recs)
		if !measured {
			return math.NaN(), false
		}
		return recs[0].steal, true
	})
	for i, recs := range tries {
		for j := range recs {
			recs[j].setAside = i != kept
		}
		b.sweep = append(b.sweep, recs...)
	}
}

// sweepAttempt is one measurement of the point on the target, with a
// fresh proxy; measured is false when it yields no figures.
func (b *bench) sweepAttempt(round, pos int, pt sweepPoint, t *target, try int) (recs []sweepRec, measured bool) {
	name := fmt.Sprintf("sweep r%d %s", round+1, pt.label())
	if try > 0 {
		name += fmt.Sprintf(" (again, %d)", try)
	}
	keys := append(sweepRows([]sweepPoint{pt}), rateRows([]sweepPoint{pt})...)
	failAll := func(why string) ([]sweepRec, bool) {
		var recs []sweepRec
		for _, k := range keys {
			recs = append(recs, sweepRec{round: round, pos: pos, key: k, target: t.key, err: why,
				rps: math.NaN(), offered: b.offered(pt), p50: math.NaN(), p99: math.NaN(), cpu: math.NaN(), steal: math.NaN()})
		}
		return recs, false
	}
	if t.skipped != "" {
		b.progress(t, name, "skipped: "+t.skipped)
		return failAll("skipped")
	}
	if t.broken != "" {
		b.progress(t, name, "not run: "+t.broken)
		return failAll("not run")
	}
	if pt.tool == "rate" && b.sweepPeak <= 0 {
		b.progress(t, name, "skipped: no reference peak")
		return failAll("skipped: no reference peak")
	}
	p, skip, err := b.startFor(t)
	switch {
	case skip != "":
		b.progress(t, name, "skipped: "+skip)
		return failAll("skipped")
	case err != nil:
		b.sweepFail(t, name, err)
		return failAll("failed: " + err.Error())
	}
	if p != nil {
		defer p.stop(5 * time.Second)
	}
	flushTimeWait()
	var text string
	stolen := b.guard.sample()
	switch pt.tool {
	case "redis":
		recs, text, err = b.sweepRedis(t, p, pt)
	case "wrk":
		recs, text, err = b.sweepWrk(t, p, pt)
	default:
		recs, text, err = b.sweepFixed(t, p, pt)
	}
	steal := stolen()
	if err == nil && p != nil && p.exited() {
		err = fmt.Errorf("the proxy exited during the run (%v)%s", p.err, p.stderrTail())
	}
	if err != nil {
		b.sweepFail(t, name, err)
		return failAll("failed: " + err.Error())
	}
	for i := range recs {
		recs[i].round, recs[i].pos, recs[i].target, recs[i].steal = round, pos, t.key, steal
	}
	b.progress(t, name, text+b.guard.verdict(steal))
	return recs, len(recs) > 0
}

// sweepFail prints the failure and notes the first three of each target.
func (b *bench) sweepFail(t *target, name string, err error) {
	b.progress(t, name, "FAILED: "+err.Error())
	if b.sweepFails == nil {
		b.sweepFails = map[string]int{}
	}
	if b.sweepFails[t.key]++; b.sweepFails[t.key] <= 3 {
		b.note("%s %s failed: %v", t.name, name, err)
	}
}

// redisEstimate is the request rate a point's -n is sized from before the
// target has run it once: roughly what loopback gives, directly or through
// a proxy (issue #15's figures).
func redisEstimate(pt sweepPoint, proxy bool) float64 {
	switch {
	case pt.pipe > 1:
		return 400000
	case !proxy && pt.conns == 1:
		return 50000
	case !proxy:
		return 70000
	case pt.conns == 1:
		return 16000
	case pt.conns < 16:
		return 35000
	}
	return 55000
}

// redisN sizes -n (requests per test; get and set each run n) so that the
// point lasts about the sweep's seconds at rate req/s.
func redisN(rate float64, seconds int) int {
	n := int(rate * float64(seconds) / 2)
	n = n / 1000 * 1000
	return min(max(n, 2000), 50_000_000)
}

func (b *bench) sweepRedis(t *target, p *proc, pt sweepPoint) ([]sweepRec, string, error) {
	estKey := t.key + " " + pt.label()
	rate, ok := b.sweepRate[estKey]
	if !ok {
		rate = redisEstimate(pt, t.proxy)
	}
	n := redisN(rate, b.ss.seconds)
	port := redisPort
	if t.proxy {
		port = t.redis
	}
	args := []string{"redis-benchmark", "-h", host, "-p", strconv.Itoa(port), "-t", "get,set",
		"-c", strconv.Itoa(pt.conns), "-n", strconv.Itoa(n), "--csv"}
	if pt.pipe > 1 {
		args = append(args, "-P", strconv.Itoa(pt.pipe))
	}
	// redis-benchmark spins forever when it cannot connect: the timeout
	// is what ends it then.
	timeout := 4*time.Duration(b.ss.seconds)*time.Second + 20*time.Second
	var res map[string]redisResult
	t0 := time.Now()
	u, err := b.measure(p, func() error {
		out, err := b.loadFor("redis-benchmark", timeout, nil, args...)
		if err != nil {
			return err
		}
		res, err = parseRedisCSV(out)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	wall := time.Since(t0).Seconds()
	var recs []sweepRec
	var parts []string
	var secs float64
	for _, test := range []string{"get", "set"} {
		x, ok := res[test]
		if !ok {
			return nil, "", fmt.Errorf("redis-benchmark printed no %s result", test)
		}
		secs += float64(n) / x.RPS
		rec := sweepRec{key: sweepKey{work: "redis " + test, conns: pt.conns, pipe: pt.pipe},
			rps: x.RPS, p50: x.P50ms, p99: x.P99ms, cpu: math.NaN(), requests: int64(n), n: n,
			use: u, wall: wall}
		if t.proxy {
			rec.cpu = u.Charged() / float64(2*n) * 1e6
		}
		recs = append(recs, rec)
		parts = append(parts, fmt.Sprintf("%s %.0f req/s p50 %.3f p99 %.3f ms", test, x.RPS, x.P50ms, x.P99ms))
	}
	// The next rounds' -n: from the highest rate this target reached here,
	// so that one slow round (the machine is busy) does not shorten the
	// next; a slower round lasts longer instead.
	if r := 2 * float64(n) / secs; !ok || r > rate {
		b.sweepRate[estKey] = r
	}
	text := strings.Join(parts, ", ") + fmt.Sprintf(" (n %d, %.1f s)", n, wall)
	if t.proxy {
		text += fmt.Sprintf(", CPU %.1f µs/req (%s)", recs[0].cpu, u)
	}
	return recs, text, nil
}

func (b *bench) sweepWrk(t *target, p *proc, pt sweepPoint) ([]sweepRec, string, error) {
	var w wrkResult
	u, err := b.measure(p, func() (err error) { w, err = b.wrkRun(t, pt.conns, b.ss.seconds); return })
	if err != nil {
		return nil, "", err
	}
	b.checkErrors(t, "sweep "+pt.label(), w)
	rec := sweepRec{key: sweepKey{work: "wrk", conns: pt.conns, pipe: 1}, rps: w.rate(),
		p50: w.P50us / 1000, p99: w.P99us / 1000, cpu: math.NaN(), requests: w.Requests,
		use: u, wall: float64(w.DurationUS) / 1e6}
	text := fmt.Sprintf("%.0f req/s, p50 %.3f ms, p99 %.3f ms", rec.rps, rec.p50, rec.p99)
	if t.proxy && w.Requests > 0 {
		rec.cpu = u.Charged() / float64(w.Requests) * 1e6
		text += fmt.Sprintf(", CPU %.1f µs/req (%s)", rec.cpu, u)
	}
	return []sweepRec{rec}, text, nil
}

// sweepCell is one table cell's four figures for a target and row.
type sweepCell struct {
	rps, p50, p99, cpu stat
	fails              int    // rounds that measured nothing
	why                string // the last reason, when no round measured
}

func (b *bench) sweepSummary(k sweepKey, target string) sweepCell {
	var rps, p50, p99, cpu []float64
	var c sweepCell
	for _, r := range b.sweep {
		if r.key != k || r.target != target || r.setAside {
			continue
		}
		if r.err != "" {
			c.fails++
			c.why = r.err
			continue
		}
		rps, p50, p99, cpu = append(rps, r.rps), append(p50, r.p50), append(p99, r.p99), append(cpu, r.cpu)
	}
	c.rps, c.p50, c.p99, c.cpu = summarize(rps), summarize(p50), summarize(p99), summarize(cpu)
	return c
}

// verdict is issue #15's targets at one point: ringproxy uring against
// HAProxy, medians over the rounds.
type verdict struct {
	ok                 bool
	missed             []string
	rps, p50, p99, cpu float64 // uring / haproxy
}

// cpuLimit is the CPU per request ringproxy may spend, as a fraction of
// HAProxy's: 0.9, and 0.8 at 64 connections and above.
func cpuLimit(conns int) float64 {
	if conns >= 64 {
		return 0.8
	}
	return 0.9
}

// judge compares the medians; ok is false with no figures to compare.
func judge(u, h sweepCell, conns int) (verdict, bool) {
	figs := []float64{u.rps.med, h.rps.med, u.p50.med, h.p50.med, u.p99.med, h.p99.med, u.cpu.med, h.cpu.med}
	for _, f := range figs {
		if math.IsNaN(f) || f <= 0 {
			return verdict{}, false
		}
	}
	v := verdict{rps: u.rps.med / h.rps.med, p50: u.p50.med / h.p50.med, p99: u.p99.med / h.p99.med, cpu: u.cpu.med / h.cpu.med}
	if u.rps.med < h.rps.med {
		v.missed = append(v.missed, "req/s")
	}
	if u.p50.med > h.p50.med {
		v.missed = append(v.missed, "p50")
	}
	if u.p99.med > h.p99.med {
		v.missed = append(v.missed, "p99")
	}
	if v.cpu > cpuLimit(conns) {
		v.missed = append(v.missed, "CPU")
	}
	v.ok = len(v.missed) == 0
	return v, true
}

func (v verdict) String() string {
	ratios := fmt.Sprintf("req/s %.2f, p50 %.2f, p99 %.2f, CPU %.2f", v.rps, v.p50, v.p99, v.cpu)
	if v.ok {
		return "ok (" + ratios + ")"
	}
	return "MISS " + strings.Join(v.missed, ", ") + " (" + ratios + ")"
}

// fmtStat is "median [min–max]", or the median alone from one round.
func fmtStat(s stat, prec int) string {
	if s.n == 0 {
		return ""
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	if s.n == 1 {
		return f(s.med)
	}
	return f(s.med) + " [" + f(s.min) + "–" + f(s.max) + "]"
}

// sweepMarkdown is the sweep's section of latest.md.
func (b *bench) sweepMarkdown() string {
	ts := b.sweepTargets()
	rows := sweepRows(sweepPoints(b.ss))
	var s strings.Builder
	if len(rows) == 0 { // the rate points alone (BENCH_SWEEP_WORKLOADS=rate)
		s.WriteString("## Concurrency sweep\n")
		s.WriteString(b.rateMarkdown())
		s.WriteString("\nEvery round's raw figures: latest-sweep.csv.\n")
		return s.String()
	}
	fmt.Fprintf(&s, "## Concurrency sweep\n\n"+
		"redis-benchmark `-t get,set` against redis-server, and wrk keep-alive (`-t1 -cN --latency`) against nginx, "+
		"both on CPU %d, through each target at each connection count; the pipelined rows are `-P %d` at %d connections. "+
		"%d round(s) of ~%d s per point (BENCH_ROUNDS, BENCH_SWEEP_SECONDS); round r visits the targets in the list's order rotated by r, "+
		"each run with a fresh proxy process. Each figure is the median over the rounds [min–max]; "+
		"p50 and p99 in ms; CPU in µs per request, the larger of the proxy's process time and its core's busy time less steal "+
		"(a redis row's CPU is over the get and set run together, the same in both rows).",
		b.s.loadCPU, b.ss.pipe, pipeConns, b.ss.rounds, b.ss.seconds)
	judged := judgedTargets(ts)
	if judged {
		s.WriteString(" The last column is issue #15's targets for ringproxy uring against haproxy: req/s ≥ haproxy's, " +
			"p50 and p99 ≤ haproxy's, CPU per request ≤ 0.9× haproxy's (≤ 0.8× at 64 connections and above); " +
			"the ratios are uring / haproxy, of the medians.")
	}
	s.WriteString("\n\n")
	tableHead(&s, "| workload | conns |", ts, judged)
	var ok, miss int
	for _, k := range rows {
		fmt.Fprintf(&s, "| %s | %d |", k.workload(), k.conns)
		b.tableRow(&s, ts, k, judged, &ok, &miss, func(u, h sweepCell) (fmt.Stringer, bool, bool) {
			v, have := judge(u, h, k.conns)
			return v, v.ok, have
		})
	}
	if judged {
		fmt.Fprintf(&s, "\nTargets met at %d of %d points (ringproxy uring vs haproxy).\n", ok, ok+miss)
	}
	s.WriteString(b.rateMarkdown())
	s.WriteString("\nEvery round's raw figures: latest-sweep.csv; chart: latest-sweep.svg.\n")
	return s.String()
}

// tableRow writes one row's cells for every target and, when judged,
// the verdict of uring against haproxy, counting it in ok or miss.
func (b *bench) tableRow(s *strings.Builder, ts []*target, k sweepKey, judged bool, ok, miss *int,
	verdict func(u, h sweepCell) (v fmt.Stringer, met, have bool)) {
	cells := map[string]sweepCell{}
	for _, t := range ts {
		cells[t.key] = b.sweepSummary(k, t.key)
		s.WriteString(b.cellText(t, cells[t.key]))
	}
	if judged {
		switch v, met, have := verdict(cells["uring"], cells["haproxy"]); {
		case !have:
			s.WriteString(" - |")
		case met:
			fmt.Fprintf(s, " %s |", v)
			*ok++
		default:
			fmt.Fprintf(s, " %s |", v)
			*miss++
		}
	}
	s.WriteString("\n")
}

// judgedTargets says whether the targets include both sides of issue
// #15's comparison, ringproxy uring and HAProxy.
func judgedTargets(ts []*target) bool {
	var uring, haproxy bool
	for _, t := range ts {
		uring = uring || t.key == "uring"
		haproxy = haproxy || t.key == "haproxy"
	}
	return uring && haproxy
}

// tableHead writes a sweep or rate table's header and alignment rows:
// the leading columns (two), each target's four (three for no proxy),
// and the targets column when judged.
func tableHead(s *strings.Builder, lead string, ts []*target, judged bool) {
	s.WriteString(lead)
	for _, t := range ts {
		fmt.Fprintf(s, " %[1]s req/s | %[1]s p50 | %[1]s p99 |", t.name)
		if t.proxy {
			fmt.Fprintf(s, " %s CPU µs/req |", t.name)
		}
	}
	if judged {
		s.WriteString(" targets (uring vs haproxy) |")
	}
	s.WriteString("\n|---|---:|")
	for _, t := range ts {
		s.WriteString("---:|---:|---:|")
		if t.proxy {
			s.WriteString("---:|")
		}
	}
	if judged {
		s.WriteString("---|")
	}
	s.WriteString("\n")
}

// cellText is one target's cells of a sweep or rate row: req/s, p50, p99
// and, for a proxy, CPU; the reason in each when no round measured.
func (b *bench) cellText(t *target, c sweepCell) string {
	n := 3
	if t.proxy {
		n = 4
	}
	if c.rps.n == 0 {
		word := "failed"
		if strings.HasPrefix(c.why, "skipped") || c.why == "not run" {
			word = c.why
		}
		return strings.Repeat(" "+word+" |", n)
	}
	suffix := ""
	if c.fails > 0 {
		suffix = fmt.Sprintf(" (%d of %d rounds)", c.rps.n, c.rps.n+c.fails)
	}
	text := fmt.Sprintf(" %s%s | %s | %s |", fmtStat(c.rps, 0), suffix, fmtStat(c.p50, 3), fmtStat(c.p99, 3))
	if t.proxy {
		text += fmt.Sprintf(" %s |", fmtStat(c.cpu, 1))
	}
	return text
}

// sweepCSV writes every raw figure, one line per round, row and target.
func (b *bench) sweepCSV(path string) error {
	recs := [][]string{{"round", "position", "workload", "conns", "pipeline", "offered_rps", "target", "key",
		"rps", "p50_ms", "p99_ms", "cpu_us_req", "requests", "redis_n", "cpu_proc_s", "cpu_core_s", "cpu_steal_s", "wall_s", "error",
		"host_steal_pct", "set_aside"}}
	name := map[string]string{}
	for _, t := range b.targets {
		name[t.key] = t.name
	}
	fl := csvFloat
	for _, r := range b.sweep {
		offered := ""
		if r.key.work == "rate" {
			offered = fl(r.offered, 0)
		}
		rec := []string{strconv.Itoa(r.round + 1), strconv.Itoa(r.pos + 1), r.key.work, strconv.Itoa(r.key.conns),
			strconv.Itoa(r.key.pipe), offered, name[r.target], r.target}
		if r.err != "" {
			rec = append(rec, "", "", "", "", "", "", "", "", "", "", r.err)
		} else {
			n := ""
			if r.n > 0 {
				n = strconv.Itoa(r.n)
			}
			rec = append(rec, fl(r.rps, 1), fl(r.p50, 3), fl(r.p99, 3), fl(r.cpu, 2), strconv.FormatInt(r.requests, 10), n)
			rec = append(rec, r.use.cells(!math.IsNaN(r.cpu))...) // NaN: no proxy process, nothing measured
			rec = append(rec, fl(r.wall, 2), "")
		}
		rec = append(rec, stealCell(r.steal), setAsideCell(r.setAside))
		recs = append(recs, rec)
	}
	return writeCSV(path, recs)
}

// writeSweep writes latest-sweep.{csv,svg} and the timestamped copies.
func (b *bench) writeSweep(stamp string) error {
	svg := b.sweepSVG()
	for _, name := range []string{"latest-sweep", stamp + "-sweep"} {
		base := filepath.Join(b.s.out, name)
		if err := b.sweepCSV(base + ".csv"); err != nil {
			return err
		}
		if err := os.WriteFile(base+".svg", []byte(svg), 0o644); err != nil {
			return err
		}
	}
	return nil
}
