// Command ctlprobe measures how long ringproxy's control plane takes to
// answer (issue #14, item 8): it sends requests of four kinds, one at a
// time, and reports each kind's latency percentiles.
//
//	metrics   GET /metrics      on the [admin] stats listener
//	stats     GET /stats.json   same listener
//	notfound  GET /nonexistent  same listener: a 404 that never asks the
//	                            worker loops, the baseline of the HTTP path
//	info      "show info"       on the [admin] socket: connect, write the
//	                            command and "\n", half-close, read to EOF
//
//	ctlprobe -stats 127.0.0.1:28112 -socket /run/ringproxy.sock -n 300 -interval 20ms
//
// Each kind gets a request every -interval, the kinds taking turns (with
// four kinds and 20ms, one request every 5ms); a request that answers late
// delays the next rather than overlapping it. Each request uses a new
// connection (-keepalive reuses one per kind instead) and is timed from
// the dial to the last byte of the answer. The run ends when every kind
// has sent -n requests or after -duration, whichever comes first.
//
// From /stats.json, read before and after the run (not timed), it also
// reports what the health checks did meanwhile: checks run, checks failed,
// UP/DOWN transitions, servers seen DOWN, and the longest gap between two
// finished checks of one server seen in the /stats.json answers (the start
// of each check is interval ±10% after the start of the one before, so a
// gap above 1.1 × interval means a check started or finished late).
//
// It prints a table, or with -json one object on stdout:
//
//	{"duration_s":6.1,"cpu_s":0.4,"kinds":{"metrics":{"count":300,"errors":0,"p50_ms":0.61,
//	 "p90_ms":0.9,"p99_ms":1.8,"max_ms":3.2},...},"checks":{...}}
//
// Exit status 1 when a kind had no successful request.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// kind is one sort of control-plane request.
type kind struct {
	name   string
	label  string
	do     func() (body []byte, err error)
	lats   []time.Duration
	errs   int
	lastEr string
}

type kindResult struct {
	Label     string  `json:"label"`
	Count     int     `json:"count"`
	Errors    int     `json:"errors"`
	LastError string  `json:"last_error,omitempty"`
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	Max       float64 `json:"max_ms"`
}

type checkResult struct {
	Servers        int     `json:"servers_checked"`
	Checks         uint64  `json:"checks"`
	Failures       uint64  `json:"check_failures"`
	Transitions    uint64  `json:"transitions"`
	ProcessTrans   uint64  `json:"server_transitions"`
	SeenDown       int     `json:"servers_seen_down"`
	DownAtEnd      int     `json:"servers_down_at_end"`
	MaxGapMs       float64 `json:"max_check_gap_ms"`
	LastError      string  `json:"last_error,omitempty"`
	SnapshotsTaken int     `json:"snapshots"`
}

type output struct {
	DurationS float64               `json:"duration_s"`
	CPUs      float64               `json:"cpu_s"` // this process's own user+system time
	Kinds     map[string]kindResult `json:"kinds"`
	Checks    *checkResult          `json:"checks,omitempty"`
}

func main() {
	statsAddr := flag.String("stats", "", "[admin] stats `HOST:PORT` (empty: skip the HTTP kinds)")
	sock := flag.String("socket", "", "[admin] socket `PATH` (empty: skip show info)")
	n := flag.Int("n", 300, "requests of each kind")
	interval := flag.Duration("interval", 20*time.Millisecond, "time between two requests of one kind")
	dur := flag.Duration("duration", 0, "stop after this long even if -n is not reached (0: no limit)")
	timeout := flag.Duration("timeout", 5*time.Second, "longest wait for one answer (counted as an error)")
	keepalive := flag.Bool("keepalive", false, "reuse one HTTP connection per kind instead of dialing each time")
	asJSON := flag.Bool("json", false, "print one JSON object instead of a table")
	flag.Parse()
	if *n < 1 || *interval < 0 || *dur < 0 || *timeout <= 0 || (*statsAddr == "" && *sock == "") {
		fmt.Fprintln(os.Stderr, "ctlprobe: need -stats or -socket, -n >= 1, positive -timeout")
		flag.Usage()
		os.Exit(2)
	}

	var kinds []*kind
	var hc *http.Client
	if *statsAddr != "" {
		hc = &http.Client{Timeout: *timeout, Transport: &http.Transport{
			DisableKeepAlives: !*keepalive, MaxIdleConnsPerHost: 4, Proxy: nil,
			DialContext: (&net.Dialer{Timeout: *timeout}).DialContext,
		}}
		get := func(path string, want int) func() ([]byte, error) {
			url := "http://" + *statsAddr + path
			return func() ([]byte, error) {
				resp, err := hc.Get(url)
				if err != nil {
					return nil, err
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return nil, err
				}
				if resp.StatusCode != want {
					return nil, fmt.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, want)
				}
				return body, nil
			}
		}
		kinds = append(kinds,
			&kind{name: "metrics", label: "GET /metrics", do: get("/metrics", http.StatusOK)},
			&kind{name: "stats", label: "GET /stats.json", do: get("/stats.json", http.StatusOK)},
			&kind{name: "notfound", label: "GET /nonexistent (404)", do: get("/nonexistent", http.StatusNotFound)})
	}
	if *sock != "" {
		kinds = append(kinds, &kind{name: "info", label: "admin show info", do: func() ([]byte, error) {
			return admin(*sock, "show info", *timeout)
		}})
	}

	var checks *checkWatch
	if hc != nil {
		checks = newCheckWatch(hc, *statsAddr)
	}

	start := time.Now()
	var end time.Time
	if *dur > 0 {
		end = start.Add(*dur)
	}
	step := *interval / time.Duration(len(kinds))
	next := start
	for i := 0; i < *n*len(kinds); i++ {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else {
			next = time.Now() // late: go on from now, no burst to catch up
		}
		next = next.Add(step)
		if !end.IsZero() && time.Now().After(end) {
			break
		}
		k := kinds[i%len(kinds)]
		t0 := time.Now()
		body, err := k.do()
		lat := time.Since(t0)
		if err != nil {
			k.errs++
			k.lastEr = err.Error()
			continue
		}
		k.lats = append(k.lats, lat)
		if k.name == "stats" && checks != nil {
			checks.sample(body)
		}
	}
	out := output{DurationS: round(time.Since(start).Seconds(), 2), Kinds: map[string]kindResult{}}
	failed := false
	for _, k := range kinds {
		r := summarize(k)
		out.Kinds[k.name] = r
		if r.Count == 0 {
			failed = true
		}
	}
	if checks != nil {
		out.Checks = checks.finish()
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		out.CPUs = round(time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds(), 3)
	}

	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(os.Stderr, "ctlprobe:", err)
			os.Exit(1)
		}
	} else {
		printTable(os.Stdout, kinds, &out)
	}
	if failed {
		os.Exit(1)
	}
}

// admin sends one command on the admin socket and reads the answer to EOF,
// as `ringproxy ctl` does.
func admin(path, cmd string, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return nil, err
	}
	if err := c.(*net.UnixConn).CloseWrite(); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(string(body), "engine:") {
		return nil, fmt.Errorf("%s: unexpected answer %.60q", cmd, body)
	}
	return body, nil
}

func summarize(k *kind) kindResult {
	slices.Sort(k.lats)
	r := kindResult{Label: k.label, Count: len(k.lats), Errors: k.errs, LastError: k.lastEr}
	if len(k.lats) > 0 {
		r.P50, r.P90, r.P99 = pct(k.lats, 0.50), pct(k.lats, 0.90), pct(k.lats, 0.99)
		r.Max = ms(k.lats[len(k.lats)-1])
	}
	return r
}

// pct is the nearest-rank percentile of sorted, in milliseconds.
func pct(sorted []time.Duration, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return ms(sorted[max(i, 0)])
}

func ms(d time.Duration) float64 { return round(float64(d)/1e6, 3) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func printTable(w io.Writer, kinds []*kind, out *output) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "ctlprobe: %.1f s (own CPU %.2f s)\n", out.DurationS, out.CPUs)
	fmt.Fprintf(bw, "%-24s %6s %6s %9s %9s %9s %9s\n", "kind", "count", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms")
	for _, k := range kinds {
		r := out.Kinds[k.name]
		fmt.Fprintf(bw, "%-24s %6d %6d %9.3f %9.3f %9.3f %9.3f\n", r.Label, r.Count, r.Errors, r.P50, r.P90, r.P99, r.Max)
		if r.LastError != "" {
			fmt.Fprintf(bw, "  last error: %s\n", r.LastError)
		}
	}
	if c := out.Checks; c != nil {
		fmt.Fprintf(bw, "health checks: %d servers, %d checks, %d failed, %d transitions (process: %d), %d seen DOWN, %d DOWN at end, longest gap between checks %.0f ms\n",
			c.Servers, c.Checks, c.Failures, c.Transitions, c.ProcessTrans, c.SeenDown, c.DownAtEnd, c.MaxGapMs)
		if c.LastError != "" {
			fmt.Fprintf(bw, "  last check error: %s\n", c.LastError)
		}
	}
}

// ---- health checks, from /stats.json

// snap is the part of /stats.json read here.
type snap struct {
	Process struct {
		ServerTransitions uint64 `json:"server_transitions"`
	} `json:"process"`
	Backends []struct {
		Name    string `json:"name"`
		Servers []struct {
			Name  string `json:"name"`
			Up    bool   `json:"up"`
			Check *struct {
				LastCheck     time.Time `json:"last_check"`
				LastError     string    `json:"last_error"`
				Checks        uint64    `json:"checks"`
				CheckFailures uint64    `json:"check_failures"`
				Transitions   uint64    `json:"transitions"`
			} `json:"check"`
		} `json:"servers"`
	} `json:"backends"`
}

type checkWatch struct {
	hc    *http.Client
	url   string
	first *snap
	err   error
	last  map[string]time.Time // server: last_check seen
	down  map[string]bool      // servers seen DOWN
	gap   time.Duration
	n     int
}

func newCheckWatch(hc *http.Client, addr string) *checkWatch {
	w := &checkWatch{hc: hc, url: "http://" + addr + "/stats.json", last: map[string]time.Time{}, down: map[string]bool{}}
	w.first, w.err = w.fetch()
	if w.first != nil {
		w.observe(w.first)
	}
	return w
}

func (w *checkWatch) fetch() (*snap, error) {
	resp, err := w.hc.Get(w.url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /stats.json: status %d", resp.StatusCode)
	}
	var s snap
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (w *checkWatch) sample(body []byte) {
	var s snap
	if json.Unmarshal(body, &s) == nil {
		w.observe(&s)
	}
}

func (w *checkWatch) observe(s *snap) {
	w.n++
	for _, b := range s.Backends {
		for _, sv := range b.Servers {
			if sv.Check == nil {
				continue
			}
			key := b.Name + "/" + sv.Name
			if !sv.Up {
				w.down[key] = true
			}
			t := sv.Check.LastCheck
			if t.IsZero() {
				continue
			}
			if prev, ok := w.last[key]; ok && t.After(prev) {
				w.gap = max(w.gap, t.Sub(prev))
			}
			if t.After(w.last[key]) {
				w.last[key] = t
			}
		}
	}
}

func (w *checkWatch) finish() *checkResult {
	end, err := w.fetch()
	if err == nil {
		w.observe(end)
	}
	r := &checkResult{}
	if w.first == nil || end == nil {
		r.LastError = "cannot read /stats.json: " + errors.Join(w.err, err).Error()
		return r
	}
	before := map[string][3]uint64{}
	for _, b := range w.first.Backends {
		for _, sv := range b.Servers {
			if sv.Check != nil {
				before[b.Name+"/"+sv.Name] = [3]uint64{sv.Check.Checks, sv.Check.CheckFailures, sv.Check.Transitions}
			}
		}
	}
	for _, b := range end.Backends {
		for _, sv := range b.Servers {
			if sv.Check == nil {
				continue
			}
			key := b.Name + "/" + sv.Name
			was := before[key]
			r.Servers++
			r.Checks += sv.Check.Checks - was[0]
			r.Failures += sv.Check.CheckFailures - was[1]
			r.Transitions += sv.Check.Transitions - was[2]
			if !sv.Up {
				r.DownAtEnd++
			}
			if sv.Check.CheckFailures > was[1] && sv.Check.LastError != "" {
				r.LastError = sv.Check.LastError
			}
		}
	}
	r.ProcessTrans = end.Process.ServerTransitions - w.first.Process.ServerTransitions
	r.SeenDown = len(w.down)
	r.MaxGapMs = round(float64(w.gap)/1e6, 1)
	r.SnapshotsTaken = w.n
	return r
}
