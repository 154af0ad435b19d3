package main

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// cell is one figure: a number (ok) or a word ("-", "failed", "skipped").
type cell struct {
	v    float64
	ok   bool
	text string
}

func num(v float64) cell { return cell{v: v, ok: true} }
func dash() cell         { return cell{text: "-"} }

type row struct{ cells map[string]cell }

func newRow() *row                         { return &row{cells: map[string]cell{}} }
func (r *row) set(key string, c cell)      { r.cells[key] = c }
func (r *row) get(key string) cell         { return r.cells[key] }
func (r *row) has(key string) (cell, bool) { c, ok := r.cells[key]; return c, ok }

// clone is a copy of the row that later sets leave alone.
func (r *row) clone() *row {
	c := newRow()
	for k, v := range r.cells {
		c.cells[k] = v
	}
	return c
}

// metric describes one column. Table columns are in the Markdown table and
// the chart; the others are in the CSV only.
type metric struct {
	key, title string
	prec       int  // decimals
	table      bool // Markdown table and chart
	chart      bool // the chart only (the TLS step's medians: its own table in latest.md)
	higher     bool // higher is better (for the chart's caption)
	help       string
}

var metrics = []metric{
	{key: "rps", title: "req/s", prec: 0, table: true, higher: true, help: "keep-alive requests per second (wrk, BENCH_CONNS connections)"},
	{key: "p50_ms", title: "p50 ms", prec: 3, table: true, help: "median latency at the keep-alive peak (wrk --latency)"},
	{key: "p99_ms", title: "p99 ms", prec: 3, table: true, help: "99th percentile latency at the keep-alive peak"},
	{key: "cpu_us_req", title: "CPU µs/req", prec: 1, table: true, help: "proxy CPU per request at the keep-alive peak"},
	{key: "cps", title: "conn/s", prec: 0, table: true, higher: true, help: "new connections per second (one request each, Connection: close)"},
	{key: "cpu_us_conn", title: "CPU µs/conn", prec: 1, table: true, help: "proxy CPU per connection in the conn/s run"},
	{key: "gbps_up", title: "Gbit/s up", prec: 2, table: true, higher: true, help: "iperf3 -P 4, client to server"},
	{key: "gbps_down", title: "Gbit/s down", prec: 2, table: true, higher: true, help: "iperf3 -P 4 -R, server to client"},
	{key: "cpu_s_gb", title: "CPU s/GB", prec: 3, table: true, help: "proxy CPU seconds per 10^9 bytes, both bulk runs together"},
	{key: "kib_conn", title: "KiB/conn", prec: 1, table: true, help: "proxy RSS growth per held idle connection"},
	{key: "rss_base_mib", title: "base RSS MiB", prec: 1, table: true, help: "proxy RSS just before the idle connections are opened"},
	{key: "rss_held_mib", title: "RSS MiB held", prec: 1, table: true, help: "proxy RSS with the BENCH_HOLD idle connections held: base plus growth"},
	{key: "cpu_us_req_fixed", title: "CPU µs/req @R", prec: 1, table: true, help: "proxy CPU per request when every target is offered the same rate R"},

	{key: "ka_requests", prec: 0}, {key: "ka_errors", prec: 0},
	{key: "ka_cpu_proc_s", prec: 2}, {key: "ka_cpu_core_s", prec: 2}, {key: "ka_cpu_steal_s", prec: 2}, {key: "ka_host_steal_pct", prec: 2}, {key: "ka_attempts", prec: 0},
	{key: "close_requests", prec: 0}, {key: "close_errors", prec: 0},
	{key: "close_cpu_proc_s", prec: 2}, {key: "close_cpu_core_s", prec: 2}, {key: "close_cpu_steal_s", prec: 2}, {key: "close_host_steal_pct", prec: 2}, {key: "close_attempts", prec: 0},
	{key: "bulk_up_bytes", prec: 0}, {key: "bulk_up_cpu_proc_s", prec: 2}, {key: "bulk_up_cpu_core_s", prec: 2}, {key: "bulk_up_cpu_steal_s", prec: 2}, {key: "bulk_up_host_steal_pct", prec: 2}, {key: "bulk_up_attempts", prec: 0},
	{key: "bulk_down_bytes", prec: 0}, {key: "bulk_down_cpu_proc_s", prec: 2}, {key: "bulk_down_cpu_core_s", prec: 2}, {key: "bulk_down_cpu_steal_s", prec: 2}, {key: "bulk_down_host_steal_pct", prec: 2}, {key: "bulk_down_attempts", prec: 0},
	{key: "hold_conns", prec: 0}, {key: "rss_before_kib", prec: 0}, {key: "rss_after_kib", prec: 0},
	{key: "fixed_rate", prec: 0}, {key: "fixed_achieved_rps", prec: 0}, {key: "fixed_requests", prec: 0},
	{key: "fixed_errors", prec: 0}, {key: "fixed_p50_ms", prec: 3}, {key: "fixed_p99_ms", prec: 3},
	{key: "fixed_cpu_proc_s", prec: 2}, {key: "fixed_cpu_core_s", prec: 2}, {key: "fixed_cpu_steal_s", prec: 2}, {key: "fixed_host_steal_pct", prec: 2}, {key: "fixed_attempts", prec: 0},

	// The TLS step (tls.go): medians over the rounds, with min and max.
	{key: "tls_plain_cps", title: "TLS conn/s", prec: 1, chart: true, higher: true, help: "new TLS connections per second, plain frontend (median)"},
	{key: "tls_plain_cps_min", prec: 1}, {key: "tls_plain_cps_max", prec: 1},
	{key: "tls_plain_p50_ms", prec: 3}, {key: "tls_plain_p99_ms", prec: 3},
	{key: "tls_plain_cpu_us_conn", title: "TLS CPU µs/conn", prec: 2, chart: true, help: "proxy CPU per new TLS connection, plain frontend (median)"},
	{key: "tls_plain_cpu_us_conn_min", prec: 2}, {key: "tls_plain_cpu_us_conn_max", prec: 2},
	{key: "tls_plain_connections", prec: 0}, {key: "tls_plain_errors", prec: 0}, {key: "tls_plain_wrong_backend", prec: 0},
	{key: "tls_plain_rounds", prec: 0},
	{key: "tls_sni_cps", title: "TLS SNI conn/s", prec: 1, chart: true, higher: true, help: "new TLS connections per second, SNI-routing frontend (median)"},
	{key: "tls_sni_cps_min", prec: 1}, {key: "tls_sni_cps_max", prec: 1},
	{key: "tls_sni_p50_ms", prec: 3}, {key: "tls_sni_p99_ms", prec: 3},
	{key: "tls_sni_cpu_us_conn", title: "TLS SNI CPU µs/conn", prec: 2, chart: true, help: "proxy CPU per new TLS connection, SNI-routing frontend (median)"},
	{key: "tls_sni_cpu_us_conn_min", prec: 2}, {key: "tls_sni_cpu_us_conn_max", prec: 2},
	{key: "tls_sni_connections", prec: 0}, {key: "tls_sni_errors", prec: 0}, {key: "tls_sni_wrong_backend", prec: 0},
	{key: "tls_sni_rounds", prec: 0},
	{key: "tls_sni_overhead_pct", prec: 2}, {key: "tls_sni_overhead_pct_min", prec: 2}, {key: "tls_sni_overhead_pct_max", prec: 2},
}

func (m metric) format(c cell, present bool) string {
	switch {
	case c.ok:
		return strconv.FormatFloat(c.v, 'f', m.prec, 64)
	case c.text != "":
		return c.text
	case !present && m.table:
		return "failed" // a step that ended before setting it
	}
	return ""
}

func tableMetrics() []metric {
	var ms []metric
	for _, m := range metrics {
		if m.table {
			ms = append(ms, m)
		}
	}
	return ms
}

// stealLine says how much of the CPUs' time the hypervisor took since the
// start: the rounds that ran while it did are slower, and their CPU figures
// count it nowhere (the CSVs have each run's cpu_steal_s).
func (b *bench) stealLine() string {
	t, err := hostTicks()
	all, steal := t.all-b.host0.all, t.steal-b.host0.steal
	if err != nil || all <= 0 {
		return ""
	}
	return fmt.Sprintf("- host steal: %.1f %% of the CPUs' time since the start (%.1f CPU-seconds, /proc/stat)\n",
		100*float64(steal)/float64(all), float64(steal)/clkTck)
}

func (b *bench) markdown(env string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "# ringproxy benchmark, %s\n\n", b.started.UTC().Format("2006-01-02 15:04 MST"))
	if l := b.stepList(); len(l) < len(stepNames) {
		fmt.Fprintf(&s, "Steps run (BENCH_STEPS): %s.\n\n", strings.Join(l, ", "))
	}
	if b.s.anyTable() {
		b.mainMarkdown(&s)
	}
	if b.s.steps["tls"] {
		if b.s.anyTable() {
			s.WriteString("\n")
		}
		s.WriteString(b.tlsMarkdown())
	}
	if b.s.steps["sweep"] {
		if b.s.anyMain() {
			s.WriteString("\n")
		}
		s.WriteString(b.sweepMarkdown())
	}
	if len(b.notes) > 0 {
		s.WriteString("\nNotes:\n\n")
		for _, n := range b.notes {
			s.WriteString("- " + n + "\n")
		}
	}
	s.WriteString("\nEnvironment:\n\n" + env)
	return s.String()
}

// mainMarkdown is the per-target table (every step but the sweep).
func (b *bench) mainMarkdown(s *strings.Builder) {
	fmt.Fprintf(s, "Loopback; the proxy pinned to CPU %d, the load generators and backends to CPU %d. "+
		"Each measurement %d s (BENCH_SECONDS); %d connections for wrk and rategen; iperf3 -P %d; %d idle connections held (once).",
		b.s.proxyCPU, b.s.loadCPU, b.s.seconds, b.s.conns, b.s.streams, b.s.hold)
	if b.s.rounds > 1 {
		fmt.Fprintf(s, " The timed steps ran in %d alternating rounds (BENCH_ROUNDS; round r visits the targets in their order rotated by r, "+
			"each step with a fresh proxy): each figure is the median of the rounds that measured it.", b.s.rounds)
	}
	if b.rate > 0 {
		fmt.Fprintf(s, " Fixed rate R = %.0f req/s: %s.", b.rate, b.rateWhy)
	}
	s.WriteString("\n\n")
	b.metricTable(s, tableMetrics(), func(r *row, m metric) string {
		c, ok := r.has(m.key)
		return m.format(c, ok)
	})
	b.spreadMarkdown(s)
	b.goalsMarkdown(s)
	s.WriteString("\nCPU is the larger of the proxy process's utime+stime and the busy time of its core " +
		"(/proc/stat, less the time the host stole), over the run; \"-\" where there is no proxy. Columns: deploy/bench/README.md.\n")
}

func (b *bench) csv(path string) error {
	ms := csvMetrics()
	head := []string{"target", "key"}
	for _, m := range ms {
		head = append(head, m.key)
	}
	recs := [][]string{head}
	for _, t := range b.targets {
		r := b.results[t.key]
		rec := []string{t.name, t.key}
		for _, m := range ms {
			c, ok := r.has(m.key)
			if m.table && m.prec > 0 {
				m.prec++ // one more decimal in the CSV than in the table
			}
			rec = append(rec, m.format(c, ok))
		}
		recs = append(recs, rec)
	}
	return writeCSV(path, recs)
}

// metricTable writes a Markdown table: one line per target, one column
// per metric, each cell from cell.
func (b *bench) metricTable(s *strings.Builder, ms []metric, cell func(*row, metric) string) {
	s.WriteString("| target |")
	for _, m := range ms {
		s.WriteString(" " + m.title + " |")
	}
	s.WriteString("\n|---|" + strings.Repeat("---:|", len(ms)) + "\n")
	for _, t := range b.targets {
		r := b.results[t.key]
		s.WriteString("| " + t.name + " |")
		for _, m := range ms {
			s.WriteString(" " + cell(r, m) + " |")
		}
		s.WriteString("\n")
	}
}

// writeCSV writes recs (the header first) to path.
func writeCSV(path string, recs [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(recs); err != nil { // WriteAll flushes
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// csvFloat is v with prec decimals; "" for NaN (not measured).
func csvFloat(v float64, prec int) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// environment lists what the figures depend on.
func (b *bench) environment() string {
	first := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if line == "" {
			return "not found"
		}
		return line
	}
	rev := first("git", "-C", b.s.root, "rev-parse", "--short", "HEAD")
	if out, err := exec.Command("git", "-C", b.s.root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
		rev += " with uncommitted changes"
	}
	cpu := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	lines := []string{
		"ringproxy: git " + rev,
		"kernel: " + first("uname", "-r") + "; CPUs: " + strconv.Itoa(runtime.NumCPU()) + " × " + cpu,
		"haproxy: " + first("haproxy", "-v"),
		"nginx: " + first("nginx", "-v"),
		"wrk: " + first("wrk", "-v"),
		"iperf3: " + first("iperf3", "-v"),
		"redis-server: " + first("redis-server", "--version") + "; redis-benchmark: " + first("redis-benchmark", "--version"),
		"go (iocopy, rategen, holdconns, tlsgen): " + runtime.Version(),
		fmt.Sprintf("RLIMIT_NOFILE: %d; maxconn (ringproxy, haproxy): %d", b.nofile, b.maxconn),
	}
	return "- " + strings.Join(lines, "\n- ") + "\n"
}

// writeReports writes latest.md, latest.{csv,svg} when the per-target
// steps ran, latest-sweep.{csv,svg} when the sweep ran, and a timestamped
// copy of each. A latest file of a part this run did not run is removed,
// so that every latest file is of the same run.
func (b *bench) writeReports() error {
	md := b.markdown(b.env + b.stealLine() + b.guard.line())
	stamp := b.started.UTC().Format("20060102-150405")
	var wrote []string
	for _, name := range []string{"latest", stamp} {
		base := filepath.Join(b.s.out, name)
		if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
			return err
		}
		if !b.s.anyMain() {
			continue
		}
		if err := b.csv(base + ".csv"); err != nil {
			return err
		}
		if err := os.WriteFile(base+".svg", []byte(b.svg()), 0o644); err != nil {
			return err
		}
	}
	wrote = append(wrote, "latest.md")
	if b.s.anyMain() {
		wrote = append(wrote, "latest.csv", "latest.svg")
	} else {
		removeStale(b.s.out, "latest.csv", "latest.svg")
	}
	if b.s.anyTable() {
		for _, name := range []string{"latest-table-runs", stamp + "-table-runs"} {
			if err := b.runsCSV(filepath.Join(b.s.out, name+".csv")); err != nil {
				return err
			}
		}
		wrote = append(wrote, "latest-table-runs.csv")
	} else {
		removeStale(b.s.out, "latest-table-runs.csv")
	}
	if b.s.steps["tls"] {
		for _, name := range []string{"latest-tls", stamp + "-tls"} {
			if err := b.tlsCSV(filepath.Join(b.s.out, name+".csv")); err != nil {
				return err
			}
		}
		wrote = append(wrote, "latest-tls.csv")
	} else {
		removeStale(b.s.out, "latest-tls.csv")
	}
	if b.s.steps["sweep"] {
		if err := b.writeSweep(stamp); err != nil {
			return err
		}
		wrote = append(wrote, "latest-sweep.csv", "latest-sweep.svg")
	} else {
		removeStale(b.s.out, "latest-sweep.csv", "latest-sweep.svg")
	}
	fmt.Printf("\n%s\nbench: wrote %s in %s (and copies named %s*) in %s\n", md, strings.Join(wrote, ", "), b.s.out, stamp,
		time.Since(b.started).Round(time.Second))
	return nil
}

func removeStale(dir string, names ...string) {
	for _, n := range names {
		_ = os.Remove(filepath.Join(dir, n))
	}
}
