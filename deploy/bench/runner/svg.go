package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// The chart: one small panel per figure, the targets side by side as bars
// in the same colour in every panel. Hand-written SVG, no dependency.

var colours = map[string]string{
	"direct":  "#8c8c8c",
	"uring":   "#1f77b4",
	"epoll":   "#17becf",
	"haproxy": "#d62728",
	"iocopy":  "#2ca02c",
}

const (
	panelW, panelH = 260, 250
	cols           = 5
	headerH        = 96
)

func chartMetrics() []metric {
	var ms []metric
	for _, m := range tableMetrics() {
		if m.key != "p50_ms" && m.key != "rss_base_mib" { // in the table only
			ms = append(ms, m)
		}
	}
	for _, m := range metrics {
		if m.chart {
			ms = append(ms, m)
		}
	}
	return ms
}

func (b *bench) svg() string {
	ms := chartMetrics()
	rows := (len(ms) + cols - 1) / cols
	w, h := cols*panelW+20, headerH+rows*panelH+10
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Arial, sans-serif">`+"\n", w, h, w, h)
	fmt.Fprintf(&s, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", w, h)
	fmt.Fprintf(&s, `<text x="10" y="24" font-size="18" font-weight="bold">ringproxy benchmark, %s</text>`+"\n",
		esc(b.started.UTC().Format("2006-01-02 15:04 MST")))
	sub := fmt.Sprintf("loopback; proxy on CPU %d, load and backends on CPU %d; %d s per measurement", b.s.proxyCPU, b.s.loadCPU, b.s.seconds)
	if b.rate > 0 {
		sub += fmt.Sprintf("; fixed rate R = %.0f req/s", b.rate)
	}
	sub += "; CPU = max(process, core)"
	fmt.Fprintf(&s, `<text x="10" y="44" font-size="12" fill="#444">%s</text>`+"\n", esc(sub))
	// Legend.
	x := 10
	for _, t := range b.targets {
		fmt.Fprintf(&s, `<rect x="%d" y="58" width="14" height="14" fill="%s"/>`, x, colour(t.key))
		fmt.Fprintf(&s, `<text x="%d" y="70" font-size="13">%s</text>`+"\n", x+19, esc(t.name))
		x += 30 + 8*len(t.name)
	}
	for i, m := range ms {
		px, py := 10+(i%cols)*panelW, headerH+(i/cols)*panelH
		b.panel(&s, m, px, py)
	}
	s.WriteString("</svg>\n")
	return s.String()
}

func (b *bench) panel(s *strings.Builder, m metric, px, py int) {
	const left, right, top, bottom = 48, 12, 40, 34
	pw, ph := float64(panelW-left-right), float64(panelH-top-bottom)
	x0, y0 := float64(px+left), float64(py+top)
	better := "lower is better"
	if m.higher {
		better = "higher is better"
	}
	fmt.Fprintf(s, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`, px+4, py+16, esc(m.title))
	fmt.Fprintf(s, `<text x="%d" y="%d" font-size="11" fill="#666">%s</text>`+"\n", px+4, py+30, better)

	peak := 0.0
	for _, t := range b.targets {
		if c := b.results[t.key].get(m.key); c.ok {
			peak = math.Max(peak, c.v)
		}
	}
	top10 := niceCeil(peak * 1.12)
	for k := 0; k <= 4; k++ {
		v := top10 * float64(k) / 4
		y := y0 + ph - ph*float64(k)/4
		fmt.Fprintf(s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`,
			x0, y, x0+pw, y, map[bool]string{true: "#444", false: "#e4e4e4"}[k == 0])
		fmt.Fprintf(s, `<text x="%.1f" y="%.1f" font-size="10" fill="#555" text-anchor="end">%s</text>`+"\n", x0-4, y+3, short(v))
	}
	n := len(b.targets)
	slot := pw / float64(n)
	bw := slot * 0.7
	for i, t := range b.targets {
		c := b.results[t.key].get(m.key)
		cx := x0 + slot*(float64(i)+0.5)
		fmt.Fprintf(s, `<text x="%.1f" y="%.1f" font-size="10" fill="#333" text-anchor="middle">%s</text>`,
			cx, y0+ph+14, esc(t.key))
		if !c.ok {
			word := c.text
			if word == "" {
				word = "n/a"
			}
			fmt.Fprintf(s, `<text x="%.1f" y="%.1f" font-size="10" fill="#999" text-anchor="middle">%s</text>`+"\n",
				cx, y0+ph-4, esc(word))
			continue
		}
		bh := 0.0
		if top10 > 0 && c.v > 0 { // a negative figure (RSS shrank) draws no bar
			bh = ph * c.v / top10
		}
		fmt.Fprintf(s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
			cx-bw/2, y0+ph-bh, bw, bh, colour(t.key), esc(t.name), esc(strFloat(c.v, m.prec)))
		fmt.Fprintf(s, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">%s</text>`+"\n",
			cx, y0+ph-bh-3, short(c.v))
	}
}

func colour(key string) string {
	if c, ok := colours[key]; ok {
		return c
	}
	return "#9467bd"
}

func esc(s string) string { return html.EscapeString(s) }

func strFloat(v float64, prec int) string { return fmt.Sprintf("%.*f", prec, v) }

// niceCeil rounds up to a power of ten times 1, 1.2, 1.6, 2, 2.4, 3, 4, 5,
// 6 or 8: values whose quarters (the grid lines) are round too.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// short formats a value for a label: 61234 → 61.2k, 0.0123 → 0.0123.
func short(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1e6:
		return trimZeros(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case a >= 1e4:
		return trimZeros(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a >= 1e3:
		return trimZeros(fmt.Sprintf("%.2f", v/1e3)) + "k"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return trimZeros(fmt.Sprintf("%.1f", v))
	case a >= 1:
		return trimZeros(fmt.Sprintf("%.2f", v))
	}
	return trimZeros(fmt.Sprintf("%.3g", v))
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") && !strings.ContainsAny(s, "e") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
