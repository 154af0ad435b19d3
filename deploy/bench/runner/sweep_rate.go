package main

// The sweep's fixed-rate points (issue #15: latency at equal offered
// load): rategen offers every target the same rate, a fraction of
// HAProxy's keep-alive peak, in the sweep's alternating rounds.

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// rateTargetCPU is the CPU per request ringproxy may spend at a fixed
// rate, as a fraction of HAProxy's.
const rateTargetCPU = 0.9

// rateHeld is the share of the offered rate a target must achieve to hold
// it.
const rateHeld = 0.95

func parseRates(s string) ([]int, error) {
	return parseInts("BENCH_SWEEP_RATES", s, 1, 200, "a percentage of the peak", "rate")
}

// rateRows lists the rate table's rows, lowest rate first.
func rateRows(ps []sweepPoint) []sweepKey {
	var ks []sweepKey
	for _, p := range ps {
		if p.tool == "rate" {
			ks = append(ks, sweepKey{work: "rate", conns: p.conns, pipe: 1, pct: p.pct})
		}
	}
	return ks
}

// offered is the rate a rate point offers, rounded down to 100 req/s; NaN
// for other points or with no reference peak.
func (b *bench) offered(pt sweepPoint) float64 {
	if pt.tool != "rate" || b.sweepPeak <= 0 {
		return math.NaN()
	}
	return max(100, math.Floor(b.sweepPeak*float64(pt.pct)/100/100)*100)
}

// chooseSweepPeak sets the reference peak of the rate points, before the
// sweep's first round: BENCH_SWEEP_PEAK, or HAProxy's keep-alive peak of
// this run, or else one calibration run of HAProxy under wrk.
func (b *bench) chooseSweepPeak() {
	if !slices.ContainsFunc(sweepPoints(b.ss), func(p sweepPoint) bool { return p.tool == "rate" }) {
		return
	}
	if b.ss.peak > 0 {
		b.sweepPeak, b.sweepPeakWhy = b.ss.peak, "set by BENCH_SWEEP_PEAK"
		return
	}
	var h *target
	for _, t := range b.targets {
		if t.key == "haproxy" {
			h = t
		}
	}
	switch {
	case h == nil:
		b.note("sweep: the fixed-rate points were skipped: HAProxy, whose peak they are fractions of, is not a target (BENCH_SWEEP_PEAK gives one)")
		return
	case b.results[h.key].get("rps").ok:
		b.sweepPeak = b.results[h.key].get("rps").v
		b.sweepPeakWhy = fmt.Sprintf("haproxy's peak in this run's keep-alive step (wrk, %d connections)", b.s.conns)
		return
	}
	rps, err := b.calibrate(h)
	if err != nil {
		b.note("sweep: the fixed-rate points were skipped: the calibration run of haproxy failed: %v", err)
		return
	}
	b.sweepPeak = rps
	b.sweepPeakWhy = fmt.Sprintf("haproxy's peak in a calibration run before the sweep (wrk, %d connections, %d s)", b.s.conns, b.ss.seconds)
}

// calibrate measures t's keep-alive peak with wrk, as the keep-alive step
// does, for the sweep's point length.
func (b *bench) calibrate(t *target) (float64, error) {
	p, skip, err := b.startFor(t)
	switch {
	case skip != "":
		return 0, fmt.Errorf("skipped: %s", skip)
	case err != nil:
		return 0, err
	}
	defer p.stop(5 * time.Second)
	flushTimeWait()
	w, err := b.wrkRun(t, b.s.conns, b.ss.seconds)
	if err != nil {
		return 0, err
	}
	if w.rate() <= 0 {
		return 0, fmt.Errorf("wrk measured no requests")
	}
	fmt.Printf("bench: sweep: calibration: %s %.0f req/s\n", t.name, w.rate())
	return w.rate(), nil
}

func (b *bench) sweepFixed(t *target, p *proc, pt sweepPoint) ([]sweepRec, string, error) {
	offered := b.offered(pt)
	rr, u, err := b.rategenRun(t, p, offered, pt.conns, b.ss.seconds)
	if err != nil {
		return nil, "", err
	}
	if rr.Errors > 0 {
		b.note("%s sweep %s: %d errors (last: %s)", t.name, pt.label(), rr.Errors, rr.LastError)
	}
	rec := sweepRec{key: rateRows([]sweepPoint{pt})[0], rps: rr.AchievedPS, offered: offered,
		p50: rr.P50us / 1000, p99: rr.P99us / 1000, cpu: math.NaN(), requests: rr.Requests,
		use: u, wall: rr.DurationS}
	text := fmt.Sprintf("offered %.0f, achieved %.0f req/s, p50 %.3f ms, p99 %.3f ms", offered, rec.rps, rec.p50, rec.p99)
	if t.proxy && rr.Requests > 0 {
		rec.cpu = u.Charged() / float64(rr.Requests) * 1e6
		text += fmt.Sprintf(", CPU %.1f µs/req (%s)", rec.cpu, u)
	}
	return []sweepRec{rec}, text, nil
}

// rateVerdict is issue #15's targets at one fixed rate: ringproxy uring
// against HAProxy, medians over the rounds.
type rateVerdict struct {
	ok            bool
	missed        []string
	held          float64 // uring's achieved / offered
	p50, p99, cpu float64 // uring / haproxy
}

// judgeRate: p50 and p99 no higher than HAProxy's, CPU per request at
// most rateTargetCPU of its, and the rate held. ok is false with no
// figures to compare.
func judgeRate(u, h sweepCell, offered float64) (rateVerdict, bool) {
	for _, f := range []float64{offered, u.rps.med, u.p50.med, h.p50.med, u.p99.med, h.p99.med, u.cpu.med, h.cpu.med} {
		if math.IsNaN(f) || f <= 0 {
			return rateVerdict{}, false
		}
	}
	v := rateVerdict{held: u.rps.med / offered, p50: u.p50.med / h.p50.med, p99: u.p99.med / h.p99.med, cpu: u.cpu.med / h.cpu.med}
	if v.held < rateHeld {
		v.missed = append(v.missed, "rate")
	}
	if u.p50.med > h.p50.med {
		v.missed = append(v.missed, "p50")
	}
	if u.p99.med > h.p99.med {
		v.missed = append(v.missed, "p99")
	}
	if v.cpu > rateTargetCPU {
		v.missed = append(v.missed, "CPU")
	}
	v.ok = len(v.missed) == 0
	return v, true
}

func (v rateVerdict) String() string {
	ratios := fmt.Sprintf("held %.2f, p50 %.2f, p99 %.2f, CPU %.2f", v.held, v.p50, v.p99, v.cpu)
	if v.ok {
		return "ok (" + ratios + ")"
	}
	return "MISS " + strings.Join(v.missed, ", ") + " (" + ratios + ")"
}

// rateMarkdown is the fixed-rate points' part of the sweep's section.
func (b *bench) rateMarkdown() string {
	rows := rateRows(sweepPoints(b.ss))
	if len(rows) == 0 {
		return ""
	}
	ts := b.sweepTargets()
	var s strings.Builder
	s.WriteString("\n### Latency at fixed rates\n\n")
	if b.sweepPeak <= 0 {
		s.WriteString("Not run: no reference peak (see the notes).\n")
		return s.String()
	}
	fmt.Fprintf(&s, "rategen offers every target the same rate over %d keep-alive connections to nginx, "+
		"a fraction of %.0f req/s, %s; the same rounds as the sweep. Each figure is the median over the rounds [min–max]: "+
		"the rate achieved, p50 and p99 in ms from a request's write to its answer's last byte, CPU in µs per request.",
		b.ss.rateConns, b.sweepPeak, b.sweepPeakWhy)
	judged := judgedTargets(ts)
	if judged {
		fmt.Fprintf(&s, " The last column is issue #15's targets for ringproxy uring against haproxy: p50 and p99 ≤ haproxy's, "+
			"CPU per request ≤ %.1f× haproxy's, and the rate held (achieved ≥ %.0f %% of offered); the ratios are of the medians.",
			rateTargetCPU, rateHeld*100)
	}
	s.WriteString("\n\n")
	tableHead(&s, "| rate | offered req/s |", ts, judged)
	var ok, miss int
	for _, k := range rows {
		offered := b.offered(sweepPoint{tool: "rate", conns: k.conns, pipe: 1, pct: k.pct})
		fmt.Fprintf(&s, "| %d %% | %.0f |", k.pct, offered)
		b.tableRow(&s, ts, k, judged, &ok, &miss, func(u, h sweepCell) (fmt.Stringer, bool, bool) {
			v, have := judgeRate(u, h, offered)
			return v, v.ok, have
		})
	}
	if judged {
		fmt.Fprintf(&s, "\nTargets met at %d of %d rates (ringproxy uring vs haproxy).\n", ok, ok+miss)
	}
	return s.String()
}
