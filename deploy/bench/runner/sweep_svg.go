package main

import (
	"fmt"
	"math"
	"strings"
)

// The sweep's chart, latest-sweep.svg: for redis get and wrk keep-alive,
// requests/s, p99 and CPU per request against connections (log x), one
// line per target through the medians, a whisker from min to max.

const (
	sweepPanelW, sweepPanelH = 400, 290
	sweepHeaderH             = 92
)

type sweepPanel struct {
	work   string // sweepKey.work
	title  string
	fig    string // "rps" | "p99" | "cpu"
	unit   string
	logY   bool
	higher bool
}

func sweepPanels() []sweepPanel {
	var ps []sweepPanel
	for _, w := range []struct{ work, title string }{{"redis get", "redis get"}, {"wrk", "wrk keep-alive"}} {
		ps = append(ps,
			sweepPanel{work: w.work, title: w.title + ": requests/s", fig: "rps", higher: true},
			sweepPanel{work: w.work, title: w.title + ": p99", fig: "p99", unit: "ms, log scale", logY: true},
			sweepPanel{work: w.work, title: w.title + ": CPU per request", fig: "cpu", unit: "µs"})
	}
	return ps
}

func (c sweepCell) fig(name string) stat {
	switch name {
	case "rps":
		return c.rps
	case "p99":
		return c.p99
	}
	return c.cpu
}

func (b *bench) sweepSVG() string {
	panels := sweepPanels()
	const cols = 3
	rows := (len(panels) + cols - 1) / cols
	w, h := cols*sweepPanelW+20, sweepHeaderH+rows*sweepPanelH+10
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Arial, sans-serif">`+"\n", w, h, w, h)
	fmt.Fprintf(&s, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", w, h)
	fmt.Fprintf(&s, `<text x="10" y="24" font-size="18" font-weight="bold">ringproxy concurrency sweep, %s</text>`+"\n",
		esc(b.started.UTC().Format("2006-01-02 15:04 MST")))
	sub := fmt.Sprintf("loopback; proxy on CPU %d, clients and backends on CPU %d; median of %d round(s) of ~%d s per point, whiskers min to max; CPU = max(process, core)",
		b.s.proxyCPU, b.s.loadCPU, b.ss.rounds, b.ss.seconds)
	fmt.Fprintf(&s, `<text x="10" y="44" font-size="12" fill="#444">%s</text>`+"\n", esc(sub))
	x := 10
	for _, t := range b.sweepTargets() {
		fmt.Fprintf(&s, `<rect x="%d" y="58" width="14" height="14" fill="%s"/>`, x, colour(t.key))
		fmt.Fprintf(&s, `<text x="%d" y="70" font-size="13">%s</text>`+"\n", x+19, esc(t.name))
		x += 30 + 8*len(t.name)
	}
	for i, p := range panels {
		b.sweepPanel(&s, p, 10+(i%cols)*sweepPanelW, sweepHeaderH+(i/cols)*sweepPanelH)
	}
	s.WriteString("</svg>\n")
	return s.String()
}

func (b *bench) sweepPanel(s *strings.Builder, p sweepPanel, px, py int) {
	const left, right, top, bottom = 56, 16, 40, 40
	pw, ph := float64(sweepPanelW-left-right), float64(sweepPanelH-top-bottom)
	x0, y0 := float64(px+left), float64(py+top)
	better := "lower is better"
	if p.higher {
		better = "higher is better"
	}
	if p.unit != "" {
		better = p.unit + "; " + better
	}
	fmt.Fprintf(s, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`, px+4, py+16, esc(p.title))
	fmt.Fprintf(s, `<text x="%d" y="%d" font-size="11" fill="#666">%s</text>`+"\n", px+4, py+30, esc(better))

	conns := b.ss.conns
	ts := b.sweepTargets()
	cells := map[string][]sweepCell{} // per target, per conns
	lo, hi := math.Inf(1), 0.0
	for _, t := range ts {
		if p.fig == "cpu" && !t.proxy {
			continue
		}
		for _, c := range conns {
			cell := b.sweepSummary(sweepKey{work: p.work, conns: c, pipe: 1}, t.key)
			cells[t.key] = append(cells[t.key], cell)
			if st := cell.fig(p.fig); st.n > 0 {
				lo, hi = math.Min(lo, st.min), math.Max(hi, st.max)
			}
		}
	}
	// x: log2 of connections, evenly spaced for 1, 4, 16, 64, 256.
	lx0, lx1 := math.Log2(float64(conns[0])), math.Log2(float64(conns[len(conns)-1]))
	xOf := func(c int) float64 {
		if lx1 == lx0 {
			return x0 + pw/2
		}
		return x0 + 10 + (pw-20)*(math.Log2(float64(c))-lx0)/(lx1-lx0)
	}
	// y: linear from 0, or log10 for latency.
	var yOf func(v float64) float64
	var ticks []float64
	if hi <= 0 {
		lo, hi = 0, 1
	}
	if p.logY {
		d0, d1 := math.Floor(math.Log10(math.Max(lo, 1e-4))), math.Ceil(math.Log10(hi))
		if d1 <= d0 {
			d1 = d0 + 1
		}
		yOf = func(v float64) float64 { return y0 + ph - ph*(math.Log10(v)-d0)/(d1-d0) }
		for d := d0; d <= d1; d++ {
			for _, m := range []float64{1, 2, 5} {
				if v := m * math.Pow(10, d); math.Log10(v) <= d1+1e-9 {
					ticks = append(ticks, v)
				}
			}
		}
	} else {
		top := niceCeil(hi * 1.1)
		yOf = func(v float64) float64 { return y0 + ph - ph*v/top }
		for k := 0; k <= 4; k++ {
			ticks = append(ticks, top*float64(k)/4)
		}
	}
	for i, v := range ticks {
		y := yOf(v)
		colour := "#e4e4e4"
		if i == 0 {
			colour = "#444"
		}
		fmt.Fprintf(s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`, x0, y, x0+pw, y, colour)
		fmt.Fprintf(s, `<text x="%.1f" y="%.1f" font-size="10" fill="#555" text-anchor="end">%s</text>`+"\n", x0-4, y+3, short(v))
	}
	for _, c := range conns {
		fmt.Fprintf(s, `<text x="%.1f" y="%.1f" font-size="10" fill="#333" text-anchor="middle">%d</text>`, xOf(c), y0+ph+14, c)
	}
	fmt.Fprintf(s, `<text x="%.1f" y="%.1f" font-size="11" fill="#555" text-anchor="middle">connections</text>`+"\n", x0+pw/2, y0+ph+30)
	for _, t := range ts {
		cs, ok := cells[t.key]
		if !ok {
			continue
		}
		col := colour(t.key)
		var line []string
		flush := func() {
			if len(line) > 1 {
				fmt.Fprintf(s, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(line, " "))
			}
			line = nil
		}
		for i, c := range conns {
			st := cs[i].fig(p.fig)
			if st.n == 0 || (p.logY && st.min <= 0) {
				flush()
				continue
			}
			x := xOf(c)
			line = append(line, fmt.Sprintf("%.1f,%.1f", x, yOf(st.med)))
			if st.n > 1 {
				fmt.Fprintf(s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1" opacity="0.7"/>`,
					x, yOf(st.min), x, yOf(st.max), col)
			}
			fmt.Fprintf(s, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s, %d connections: %s</title></circle>`+"\n",
				x, yOf(st.med), col, esc(t.name), c, esc(short(st.med)+" ["+short(st.min)+"–"+short(st.max)+"]"))
		}
		flush()
	}
}
