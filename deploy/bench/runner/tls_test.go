package main

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"ringproxy/cmd/ringproxy/config"
)

// The SNI config is issue #17's schema, key for key: one frontend with
// inspect_timeout and a route per name, no default backend.
func TestRingproxySNIConf(t *testing.T) {
	var c struct {
		Frontend []struct {
			Name           string
			Bind           []string
			Backend        *string
			InspectTimeout string `toml:"inspect_timeout"`
			Route          []struct {
				SNI     []string
				Backend string
			}
		}
		Backend []struct {
			Name   string
			Server []struct{ Address string }
		}
	}
	md, err := toml.Decode(ringproxyTLSConf(27115, 7000, true), &c)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Frontend) != 1 || len(c.Backend) != 3 {
		t.Fatalf("frontends %d, backends %d", len(c.Frontend), len(c.Backend))
	}
	f := c.Frontend[0]
	if f.Name != "tls-sni" || !reflect.DeepEqual(f.Bind, []string{"127.0.0.1:27115"}) || f.InspectTimeout != "5s" || f.Backend != nil {
		t.Errorf("frontend: %+v", f)
	}
	for i, r := range f.Route {
		if !reflect.DeepEqual(r.SNI, []string{tlsNames[i]}) || r.Backend != tlsBackends[i] {
			t.Errorf("route %d: %+v", i, r)
		}
		if b := c.Backend[i]; b.Name != tlsBackends[i] || b.Server[0].Address != addr(tlsBackendPort+i) {
			t.Errorf("backend %d: %+v", i, b)
		}
	}
	if len(f.Route) != 3 {
		t.Errorf("routes: %d", len(f.Route))
	}
	for _, k := range md.Undecoded() {
		if s := k.String(); !strings.HasPrefix(s, "global") && !strings.HasPrefix(s, "log") &&
			!strings.HasSuffix(s, "timeout_client") && !strings.HasSuffix(s, "timeout_server") && !strings.HasSuffix(s, "server.name") {
			t.Errorf("unexpected key %s", s)
		}
	}
}

// ringproxy as built now takes the plain config (and the main one): the
// plain mode measures today; the SNI config waits for [[frontend.route]].
func TestRingproxyPlainConfLoads(t *testing.T) {
	for name, text := range map[string]string{
		"plain": ringproxyTLSConf(27114, 7000, false),
		"main":  ringproxyConf(27110, 7000),
	} {
		cfg, err := config.Parse(name+".toml", []byte(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "plain" && (len(cfg.Frontends) != 1 || cfg.Frontends[0].BackendName != "tls-a" || len(cfg.Backends) != 3) {
			t.Errorf("plain: %d frontends, %d backends", len(cfg.Frontends), len(cfg.Backends))
		}
	}
}

func TestHaproxyTLSConf(t *testing.T) {
	sni := haproxyTLSConf(27135, 7000, true)
	for _, want := range []string{"bind 127.0.0.1:27135", "tcp-request inspect-delay 5s",
		"tcp-request content accept if { req.ssl_hello_type 1 }",
		"use_backend tls-a if { req.ssl_sni -i a.bench.test }", "use_backend tls-c if { req.ssl_sni -i c.bench.test }",
		"backend tls-b\n    server tls-b1 127.0.0.1:27085", "mode tcp", "nbthread 1", "maxconn 7000"} {
		if !strings.Contains(sni, want) {
			t.Errorf("SNI config lacks %q", want)
		}
	}
	if strings.Contains(sni, "default_backend") {
		t.Error("SNI config has a default backend")
	}
	plain := haproxyTLSConf(27134, 7000, false)
	if !strings.Contains(plain, "bind 127.0.0.1:27134\n    default_backend tls-a") || strings.Contains(plain, "ssl_sni") {
		t.Errorf("plain config:\n%s", plain)
	}
	if got := tlsServeArg(); got != "a.bench.test=127.0.0.1:27084,b.bench.test=127.0.0.1:27085,c.bench.test=127.0.0.1:27086" {
		t.Errorf("tlsServeArg = %q", got)
	}
}

// What ringproxy check says today about the SNI config.
func TestCheckRefusal(t *testing.T) {
	out := "/tmp/ringproxy-bench.x/ringproxy-uring-sni.toml:11: frontend[0] (tls-sni): missing backend\n" +
		"/tmp/ringproxy-bench.x/ringproxy-uring-sni.toml:11: unknown table frontend.route\n\n" +
		"/tmp/ringproxy-bench.x/ringproxy-uring-sni.toml:14: unknown key frontend.inspect_timeout\n" +
		"/tmp/ringproxy-bench.x/ringproxy-uring-sni.toml:15: something else\n"
	got := checkRefusal(out, "/tmp/ringproxy-bench.x")
	want := "ringproxy check refuses the SNI config: ringproxy-uring-sni.toml:11: frontend[0] (tls-sni): missing backend; " +
		"ringproxy-uring-sni.toml:11: unknown table frontend.route; ringproxy-uring-sni.toml:14: unknown key frontend.inspect_timeout (and 1 more)"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := checkRefusal("\n", "/x"); !strings.Contains(got, "said nothing") {
		t.Errorf("empty: %q", got)
	}
}

func TestParseTLSGen(t *testing.T) {
	out := "TLSGEN " + `{"conns":16,"duration_s":2.01,"connections":2400,"cps":1194.0,"errors":2,"wrong_backend":0,` +
		`"last_error":"read: EOF","p50_us":9000,"p99_us":21000,"max_us":40000,"per_name":{"a.bench.test":800}}` + "\n"
	r, err := parseTLSGen(out)
	if err != nil || r.Connections != 2400 || r.CPS != 1194 || r.Errors != 2 || r.P99us != 21000 || r.PerName["a.bench.test"] != 800 {
		t.Fatalf("got %+v, %v", r, err)
	}
	if err := r.check(); err != nil {
		t.Errorf("check: %v", err)
	}
	// A wrong backend fails the run, even when every answer was wrong
	// (tlsgen exits 1 then: the reason must still be the wrong backend).
	r, err = parseTLSGen(`TLSGEN {"connections":0,"wrong_backend":30,"errors":0,"last_wrong":"sent SNI b.bench.test, want backend b.bench.test, got a.bench.test"}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.check(); err == nil || !strings.Contains(err.Error(), "30 of 30 connections reached the wrong backend") {
		t.Errorf("wrong backend: %v", err)
	}
	if _, err := parseTLSGen(`TLSGEN {"connections":0,"errors":12,"last_error":"connection refused"}`); err == nil ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("no connection: %v", err)
	}
	if _, err := parseTLSGen("tlsgen: -names, -conns and -duration must name something positive\n"); err == nil {
		t.Error("no summary: want an error")
	}
}

func TestTLSModesAndOverhead(t *testing.T) {
	direct, uring := &target{key: "direct"}, &target{key: "uring", proxy: true, sni: 27115}
	if m := tlsModes(direct, 1); !reflect.DeepEqual(m, []string{modePlain}) {
		t.Errorf("direct: %v", m)
	}
	if m := tlsModes(uring, 0); !reflect.DeepEqual(m, []string{modePlain, modeSNI}) {
		t.Errorf("round 1: %v", m)
	}
	if m := tlsModes(uring, 1); !reflect.DeepEqual(m, []string{modeSNI, modePlain}) {
		t.Errorf("round 2: %v", m)
	}
	recs := []tlsRec{
		{round: 0, target: "uring", mode: modePlain, cpu: 40},
		{round: 0, target: "uring", mode: modeSNI, cpu: 41},
		{round: 1, target: "uring", mode: modeSNI, cpu: 44},
		{round: 1, target: "uring", mode: modePlain, cpu: 40},
		{round: 2, target: "uring", mode: modePlain, cpu: 50},
		{round: 2, target: "uring", mode: modeSNI, err: "failed: x", cpu: math.NaN()}, // no pair
		{round: 3, target: "uring", mode: modePlain, cpu: 40},
		{round: 3, target: "uring", mode: modeSNI, cpu: 38},
		{round: 0, target: "haproxy", mode: modeSNI, cpu: 99},
	}
	o := tlsOverhead(recs, "uring")
	if o.n != 3 || math.Abs(o.med-2.5) > 1e-9 || math.Abs(o.min+5) > 1e-9 || math.Abs(o.max-10) > 1e-9 {
		t.Errorf("overhead %+v", o)
	}
	if got := fmtPct(o); got != "+2.5 % [−5.0 – +10.0]" {
		t.Errorf("fmtPct = %q", got)
	}
	if o := tlsOverhead(recs, "haproxy"); o.n != 0 {
		t.Errorf("haproxy without a plain run: %+v", o)
	}
}

// The section and the per-target cells as they come out today: ringproxy's
// SNI mode skipped, haproxy's measured, no proxy plain only.
func TestTLSReport(t *testing.T) {
	b := &bench{results: map[string]*row{}}
	b.s.tls = tlsSettings{seconds: 2, conns: 16, rounds: 2}
	b.s.loadCPU = 1
	b.targets = []*target{
		{key: "direct", name: "no proxy", tls: tlsBackendPort},
		{key: "uring", name: "ringproxy uring", proxy: true, tls: 27114, sni: 27115,
			sniSkip: "ringproxy check refuses the SNI config: x", sniCheck: true},
		{key: "haproxy", name: "haproxy", proxy: true, tls: 27134, sni: 27135},
		{key: "iocopy", name: "go io.Copy", proxy: true, tls: 27144},
	}
	for _, tg := range b.targets {
		b.results[tg.key] = newRow()
	}
	nan := math.NaN()
	for r := 0; r < 2; r++ {
		b.tlsRecs = append(b.tlsRecs,
			tlsRec{round: r, target: "direct", mode: modePlain, cps: 1200 + float64(r), p50: 9, p99: 20, cpu: nan, conns: 2400},
			tlsRec{round: r, target: "uring", mode: modePlain, cps: 1100, p50: 10, p99: 22, cpu: 30 + float64(r), conns: 2200},
			tlsRec{round: r, target: "uring", mode: modeSNI, err: "skipped: x", cps: nan, p50: nan, p99: nan, cpu: nan},
			tlsRec{round: r, target: "haproxy", mode: modePlain, cps: 1000, p50: 11, p99: 23, cpu: 40, conns: 2000},
			tlsRec{round: r, target: "haproxy", mode: modeSNI, cps: 990, p50: 11, p99: 24, cpu: 42 + float64(r), conns: 1980, errors: 1},
		)
	}
	b.tlsSummarize()
	md := b.tlsMarkdown()
	for _, want := range []string{
		"| no proxy | 1200 [1200–1201] | 9.000 [9.000–9.000] | 20.000 [20.000–20.000] | - | - | - | - | - | - |",
		"| ringproxy uring | 1100 [1100–1100] | 10.000 [10.000–10.000] | 22.000 [22.000–22.000] | 30.5 [30.0–31.0] | skipped | skipped | skipped | skipped | skipped |",
		"| haproxy | 1000 [1000–1000] | 11.000 [11.000–11.000] | 23.000 [23.000–23.000] | 40.0 [40.0–40.0] | 990 [990–990] | 11.000 [11.000–11.000] | 24.000 [24.000–24.000] | 42.5 [42.0–43.0] | +6.2 % [+5.0 – +7.5] |",
		"2 round(s) of ~2 s per run", "16 workers",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "go io.Copy") {
		t.Error("io.Copy is in the section without BENCH_TARGETS naming it")
	}
	cells := map[string]map[string]string{
		"direct":  {"tls_plain_cps": "1200.5", "tls_plain_cpu_us_conn": "-", "tls_sni_cps": "-", "tls_sni_overhead_pct": "-", "tls_plain_connections": "4800"},
		"uring":   {"tls_plain_cpu_us_conn": "30.50", "tls_plain_cpu_us_conn_max": "31.00", "tls_sni_cps": "skipped", "tls_sni_cpu_us_conn": "skipped", "tls_sni_overhead_pct": "skipped", "tls_sni_rounds": "0"},
		"haproxy": {"tls_sni_cpu_us_conn": "42.50", "tls_sni_errors": "2", "tls_sni_overhead_pct": "6.25", "tls_sni_overhead_pct_min": "5.00", "tls_sni_wrong_backend": "0"},
		"iocopy":  {"tls_plain_cps": "not run", "tls_sni_overhead_pct": "not run"},
	}
	byKey := map[string]metric{}
	for _, m := range metrics {
		byKey[m.key] = m
	}
	for tk, want := range cells {
		for k, v := range want {
			c, ok := b.results[tk].has(k)
			if got := byKey[k].format(c, ok); got != v {
				t.Errorf("%s %s = %q, want %q", tk, k, got, v)
			}
		}
	}
	// Every TLS metric has a cell in every row: the CSV has no holes.
	for _, tg := range b.targets {
		for _, m := range metrics {
			if _, ok := b.results[tg.key].has(m.key); strings.HasPrefix(m.key, "tls_") && !ok {
				t.Errorf("%s: no %s", tg.key, m.key)
			}
		}
	}
	// The uring row's verdict appears once its SNI mode measures.
	b.targets[1].sniSkip = ""
	for i := range b.tlsRecs {
		if r := &b.tlsRecs[i]; r.target == "uring" && r.mode == modeSNI {
			*r = tlsRec{round: r.round, target: "uring", mode: modeSNI, cps: 1090, p50: 10, p99: 22, cpu: 31 + float64(r.round)}
		}
	}
	if md := b.tlsMarkdown(); !strings.Contains(md, "| +3.3 % [+3.2 – +3.3], ok (≤ +5 %) |") {
		t.Errorf("uring verdict:\n%s", md)
	}
}
