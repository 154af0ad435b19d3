package main

import (
	"fmt"
	"math"
	"time"
)

// stealGuard measures a run again when the host took more than a limit
// of the CPUs' time while it ran. On this VM the hypervisor takes time in
// bursts: a run it stole 10 % of has a p99 several times that of a quiet
// one and a lower req/s, for any proxy, so a median over five rounds of
// which two were stolen says more about the host than about the targets.
// Every target's runs, of every step that counts time, go through the
// same guard; the figures kept are those of the attempt the host took
// least of, and every attempt set aside stays in the CSVs.
type stealGuard struct {
	limit   float64       // BENCH_STEAL_LIMIT: % of all CPUs' time over a run; 0: off
	retries int           // BENCH_STEAL_RETRIES: attempts more, at most, per run
	pause   time.Duration // before an attempt again: a burst may be short
	sample  func() func() float64

	runs  int // runs measured through the guard
	again int // of them, measured again at least once
	extra int // attempts beyond the first, in all
	over  int // runs whose every attempt was over the limit
}

func newStealGuard(limit float64, retries int) *stealGuard {
	return &stealGuard{limit: limit, retries: max(retries, 0), pause: 2 * time.Second, sample: hostSteal}
}

// hostSteal starts a meter of the host's steal: the function it returns
// says what share of all CPUs' time, in %, the host took since the start
// (NaN when /proc/stat cannot be read).
func hostSteal() func() float64 {
	t0, err0 := hostTicks()
	return func() float64 {
		t1, err1 := hostTicks()
		all := t1.all - t0.all
		if err0 != nil || err1 != nil || all <= 0 {
			return math.NaN()
		}
		return 100 * float64(t1.steal-t0.steal) / float64(all)
	}
}

// measure runs attempt (0, 1, ...) until the host took no more than the
// limit of one, or the retries are spent, and returns the attempt to keep:
// the one with the least steal. attempt says how much the host took of it
// and whether it measured anything; a failed attempt is kept as it is
// (a failure is not the host's doing, and is reported).
func (g *stealGuard) measure(attempt func(n int) (stealPct float64, measured bool)) int {
	g.runs++
	kept, least := 0, math.Inf(1)
	for n := 0; ; n++ {
		pct, measured := attempt(n)
		if !measured {
			return n
		}
		if !(pct >= least) { // NaN counts as quiet: nothing says otherwise
			kept, least = n, pct
		}
		if g.limit <= 0 || !(pct > g.limit) {
			return kept
		}
		if n >= g.retries {
			g.over++
			return kept
		}
		if n == 0 {
			g.again++
		}
		g.extra++
		time.Sleep(g.pause)
	}
}

// line is the report's account of the guard, "" when it was off.
func (g *stealGuard) line() string {
	if g == nil {
		return ""
	}
	if g.limit <= 0 {
		return "- steal guard: off (BENCH_STEAL_LIMIT=0)\n"
	}
	s := fmt.Sprintf("- steal guard: a run the host took more than %g %% of (all CPUs' time, /proc/stat) was measured again, "+
		"up to %d times, and counts with its quietest attempt (BENCH_STEAL_LIMIT, BENCH_STEAL_RETRIES): "+
		"%d of %d runs measured again, %d attempts more", g.limit, g.retries, g.again, g.runs, g.extra)
	if g.over > 0 {
		s += fmt.Sprintf("; %d stayed over the limit in every attempt", g.over)
	}
	return s + "; the attempts set aside are in the CSVs (set_aside)\n"
}

// stealCell is a CSV cell for a share of steal, empty when unknown.
func stealCell(pct float64) string {
	if math.IsNaN(pct) {
		return ""
	}
	return fmt.Sprintf("%.2f", pct)
}

// verdict is what a progress line adds about a run the host took more
// than the limit of, "" for any other.
func (g *stealGuard) verdict(pct float64) string {
	if g == nil || g.limit <= 0 || !(pct > g.limit) {
		return ""
	}
	return fmt.Sprintf("; the host took %.1f %% of it, over the %g %% limit", pct, g.limit)
}

// setAsideCell is the CSVs' set_aside column: why the row counts in no
// figure, "" for one that counts.
func setAsideCell(aside bool) string {
	if aside {
		return "steal"
	}
	return ""
}
