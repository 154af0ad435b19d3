package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseStatTicks(t *testing.T) {
	// A command name with a space and a parenthesis, as /proc allows.
	line := "1234 (ring proxy) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 100 0 0"
	got, err := parseStatTicks(line)
	if err != nil || got != 325 {
		t.Fatalf("parseStatTicks = %d, %v; want 325", got, err)
	}
}

func TestParseCPUTicks(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	stat := "cpu  11 1 1 1 1 1 1 40 0 0\ncpu0 100 5 50 900 7 3 2 30 0 0\ncpu1 1 1 1 1 1 1 1 10 0 0\n"
	got, err := parseCPUTicks(stat, "cpu0")
	if want := (cpuTicks{busy: 100 + 5 + 50 + 3 + 2, steal: 30, all: 100 + 5 + 50 + 900 + 7 + 3 + 2 + 30}); err != nil || got != want {
		t.Fatalf("cpu0: %+v, %v; want %+v (steal out of busy)", got, err, want)
	}
	if got, err := parseCPUTicks(stat, "cpu"); err != nil || got.steal != 40 || got.busy != 15 {
		t.Fatalf("cpu: %+v, %v; want busy 15, steal 40", got, err)
	}
	if _, err := parseCPUTicks(stat, "cpu7"); err == nil {
		t.Fatal("cpu7: want an error")
	}
	if _, err := parseCPUTicks("cpu0 1 2 x 4 5 6 7 8\n", "cpu0"); err == nil {
		t.Fatal("a bad number: want an error")
	}
}

func TestCountSockets(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9A2A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:9A2A 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:D431 0100007F:9A2A 01 00000000:00000000 00:00000000 00000000     0        0 3 1
`
	if n := countSockets(table, 39466, "0A"); n != 1 {
		t.Errorf("listen = %d, want 1", n)
	}
	if n := countSockets(table, 39466, "01"); n != 1 {
		t.Errorf("established = %d, want 1 (only the local side)", n)
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 2s test\n  Latency Distribution\n     50%  100.00us\n" +
		`BENCHJSON {"requests":2000,"duration_us":2000000,"bytes":1,"connect":0,"read":1,"write":0,"status":2,"timeout":0,"p50_us":100.0,"p99_us":900.5,"max_us":1000.0}` + "\n"
	w, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if w.rate() != 1000 || w.errors() != 3 || w.P99us != 900.5 {
		t.Fatalf("got %+v", w)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Fatal("no summary: want an error")
	}
}

func TestParseIperf(t *testing.T) {
	if _, err := parseIperf(`{"start":{},"end":{},"error":"unable to connect to server"}`); err == nil ||
		!strings.Contains(err.Error(), "unable to connect") {
		t.Fatalf("err = %v", err)
	}
	r, err := parseIperf(`{"end":{"sum_sent":{"bytes":10},"sum_received":{"bytes":1e9,"bits_per_second":8e9}}}`)
	if err != nil || r.End.SumReceived.BitsPerSecond != 8e9 {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func TestConfigsNameEveryRoute(t *testing.T) {
	ha, rp := haproxyConf(27130, 7000), ringproxyConf(27110, 7000)
	for _, want := range []string{"bind 127.0.0.1:27130", "server bulk1 127.0.0.1:27081", "bind 127.0.0.1:27133", "server redis1 127.0.0.1:27083", "option splice-auto", "nbthread 1", "maxconn 7000"} {
		if !strings.Contains(ha, want) {
			t.Errorf("haproxy config lacks %q", want)
		}
	}
	for _, want := range []string{`bind           = ["127.0.0.1:27112"]`, `address = "127.0.0.1:27082"`, `bind           = ["127.0.0.1:27113"]`, `address = "127.0.0.1:27083"`, "access = false", "maxconn = 7000"} {
		if !strings.Contains(rp, want) {
			t.Errorf("ringproxy config lacks %q", want)
		}
	}
}

func TestShortAndNice(t *testing.T) {
	for v, want := range map[float64]string{61234: "61.2k", 1500: "1.5k", 12.5: "12.5", 0.0123: "0.0123", 0: "0"} {
		if got := short(v); got != want {
			t.Errorf("short(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]float64{0.9: 1, 1.1: 1.2, 2.2: 2.4, 3: 3, 61234: 80000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}

// Captured from redis-benchmark 7.0.15 (Debian 12): `-t get,set -n 20000
// -c 4 --csv` and the same with `-c 64 -P 16`.
const redisCSV7 = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","83682.01","0.034","0.008","0.031","0.063","0.111","1.207"
"GET","80000.00","0.035","0.008","0.031","0.047","0.159","5.047"
`

const redisCSV7Pipe = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","1052631.62","0.801","0.368","0.759","1.343","1.599","2.023"
"GET","1333333.38","0.661","0.248","0.639","1.087","1.319","1.559"
`

func TestParseRedisCSV(t *testing.T) {
	r, err := parseRedisCSV(redisCSV7)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]redisResult{
		"set": {Test: "SET", RPS: 83682.01, P50ms: 0.031, P99ms: 0.111, MaxMs: 1.207},
		"get": {Test: "GET", RPS: 80000, P50ms: 0.031, P99ms: 0.159, MaxMs: 5.047},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	// The warnings a failed CONFIG GET prints, mixed in, are skipped.
	r, err = parseRedisCSV("WARNING: Could not fetch server CONFIG\n" + redisCSV7Pipe)
	if err != nil || r["get"].RPS != 1333333.38 || r["set"].P99ms != 1.599 {
		t.Fatalf("pipelined: %+v, %v", r, err)
	}
	// redis-benchmark 6.0 printed no percentiles.
	if _, err := parseRedisCSV(`"SET","83682.01"` + "\n"); err == nil {
		t.Error("no header: want an error")
	}
	if _, err := parseRedisCSV(`"test","rps"` + "\n" + `"SET","83682.01"` + "\n"); err == nil ||
		!strings.Contains(err.Error(), "p50_latency_ms") {
		t.Errorf("no percentiles: err = %v", err)
	}
	if _, err := parseRedisCSV("Could not connect to Redis at 127.0.0.1:1: Connection refused\n"); err == nil {
		t.Error("no result: want an error")
	}
}
