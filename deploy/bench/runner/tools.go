package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// wrkResult is the BENCHJSON line of wrkScript.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Bytes      int64   `json:"bytes"`
	Connect    int64   `json:"connect"`
	Read       int64   `json:"read"`
	Write      int64   `json:"write"`
	Status     int64   `json:"status"`
	Timeout    int64   `json:"timeout"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	Maxus      float64 `json:"max_us"`
}

func (w wrkResult) rate() float64 {
	if w.DurationUS <= 0 {
		return 0
	}
	return float64(w.Requests) / (float64(w.DurationUS) / 1e6)
}

func (w wrkResult) errors() int64 {
	return w.Connect + w.Read + w.Write + w.Status + w.Timeout
}

func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "BENCHJSON "); ok {
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return r, fmt.Errorf("wrk summary: %w", err)
			}
			if r.Requests == 0 {
				return r, fmt.Errorf("wrk completed no request (%d errors)", r.errors())
			}
			return r, nil
		}
	}
	return r, fmt.Errorf("wrk printed no summary")
}

// iperfResult is what the runner needs of `iperf3 -J`.
type iperfResult struct {
	Error string `json:"error"`
	End   struct {
		SumSent struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
			Seconds       float64 `json:"seconds"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
			Seconds       float64 `json:"seconds"`
		} `json:"sum_received"`
	} `json:"end"`
}

func parseIperf(out string) (iperfResult, error) {
	var r iperfResult
	i := strings.IndexByte(out, '{')
	if i < 0 {
		return r, fmt.Errorf("iperf3 printed no JSON")
	}
	if err := json.Unmarshal([]byte(out[i:]), &r); err != nil {
		return r, fmt.Errorf("iperf3 JSON: %w", err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.Bytes <= 0 {
		return r, fmt.Errorf("iperf3 received nothing")
	}
	return r, nil
}

// rateResult is rategen's JSON line.
type rateResult struct {
	Rate       float64 `json:"rate"`
	Requests   int64   `json:"requests"`
	DurationS  float64 `json:"duration_s"`
	AchievedPS float64 `json:"achieved_rps"`
	Errors     int64   `json:"errors"`
	LastError  string  `json:"last_error"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
}

func parseRate(out string) (rateResult, error) {
	var r rateResult
	i := strings.IndexByte(out, '{')
	if i < 0 {
		return r, fmt.Errorf("rategen printed no JSON")
	}
	if err := json.Unmarshal([]byte(out[i:]), &r); err != nil {
		return r, fmt.Errorf("rategen JSON: %w", err)
	}
	if r.Requests == 0 {
		return r, fmt.Errorf("rategen completed no request: %s", r.LastError)
	}
	return r, nil
}

// redisResult is one test's line of `redis-benchmark --csv` (6.2 and later
// print the latency percentiles; 7.0's header is
// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
// "p95_latency_ms","p99_latency_ms","max_latency_ms").
type redisResult struct {
	Test                     string
	RPS, P50ms, P99ms, MaxMs float64
}

// parseRedisCSV reads every test line of redis-benchmark --csv, keyed by the
// test's name in lower case ("get", "set"). Lines that are not CSV (an
// error, a warning) are skipped; the header names the columns.
func parseRedisCSV(out string) (map[string]redisResult, error) {
	col := map[string]int{}
	res := map[string]redisResult{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, `"`) {
			continue
		}
		r := csv.NewReader(strings.NewReader(line))
		r.FieldsPerRecord = -1
		f, err := r.Read()
		if err != nil || len(f) < 2 {
			continue
		}
		if f[0] == "test" {
			for i, name := range f {
				col[name] = i
			}
			continue
		}
		get := func(name string) (float64, error) {
			i, ok := col[name]
			if !ok || i >= len(f) {
				return 0, fmt.Errorf("redis-benchmark --csv has no %s column (version 6.2 or later prints it)", name)
			}
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return 0, fmt.Errorf("redis-benchmark %s %s: %q is not a number", f[0], name, f[i])
			}
			return v, nil
		}
		var x redisResult
		x.Test = f[0]
		var errs [4]error
		x.RPS, errs[0] = get("rps")
		x.P50ms, errs[1] = get("p50_latency_ms")
		x.P99ms, errs[2] = get("p99_latency_ms")
		x.MaxMs, errs[3] = get("max_latency_ms")
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		if x.RPS <= 0 {
			return nil, fmt.Errorf("redis-benchmark %s: %v requests per second", x.Test, x.RPS)
		}
		res[strings.ToLower(x.Test)] = x
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redis-benchmark printed no result")
	}
	return res, nil
}

// tlsResult is tlsgen's TLSGEN line.
type tlsResult struct {
	Conns        int              `json:"conns"`
	DurationS    float64          `json:"duration_s"`
	Connections  int64            `json:"connections"`
	CPS          float64          `json:"cps"`
	Errors       int64            `json:"errors"`
	WrongBackend int64            `json:"wrong_backend"`
	LastError    string           `json:"last_error"`
	LastWrong    string           `json:"last_wrong"`
	P50us        float64          `json:"p50_us"`
	P99us        float64          `json:"p99_us"`
	Maxus        float64          `json:"max_us"`
	PerName      map[string]int64 `json:"per_name"`
}

// parseTLSGen reads the TLSGEN line; a run that completed no connection is
// an error that says why.
func parseTLSGen(out string) (tlsResult, error) {
	var r tlsResult
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "TLSGEN "); ok {
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return r, fmt.Errorf("tlsgen summary: %w", err)
			}
			if r.Connections == 0 && r.WrongBackend == 0 {
				return r, fmt.Errorf("tlsgen completed no connection (%d errors, last: %s)", r.Errors, r.LastError)
			}
			return r, nil
		}
	}
	return r, fmt.Errorf("tlsgen printed no summary")
}

// check fails a run with any answer from the wrong backend: the proxy
// routed a connection where its server name does not lead.
func (r tlsResult) check() error {
	if r.WrongBackend > 0 {
		return fmt.Errorf("%d of %d connections reached the wrong backend (last: %s)",
			r.WrongBackend, r.WrongBackend+r.Connections+r.Errors, r.LastWrong)
	}
	if r.Connections == 0 {
		return fmt.Errorf("tlsgen completed no connection (%d errors, last: %s)", r.Errors, r.LastError)
	}
	return nil
}
