// Command rategen is the benchmark's fixed-rate HTTP/1.1 load generator
// (wrk cannot hold a rate, and Debian has no wrk2). It opens -conns
// keep-alive connections and sends GET requests on a fixed schedule that adds
// up to -rate requests per second in total: connection i sends its k-th
// request at start + (k*conns+i)/rate. A connection that falls behind sends
// at once until it is back on schedule, so the offered rate holds as long as
// the target keeps up. Each connection has at most one request in flight.
// One thread drives every connection from one epoll set and a timerfd, as
// wrk does, so that the load CPU can offer most of a proxy's peak; a
// request due within -slack of a wake goes out in it, because each timer
// wakeup costs the load CPU more than a request does (in a VM, about 40 µs
// of its time at 12,000 req/s), and the queueing that adds at three
// quarters of a proxy's peak would be what the latency measures.
//
//	rategen -addr 127.0.0.1:39110 -rate 20000 -conns 64 -duration 10s
//
// It prints one JSON object on stdout:
//
//	{"rate":20000,"conns":64,"duration_s":10.0,"requests":200000,
//	 "achieved_rps":19998.1,"errors":0,"p50_us":85,"p99_us":240,"max_us":3100}
//
// Latency is measured from the moment a request is written to the moment its
// whole response has been read. Exit status 1 when nothing succeeded.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"
)

type result struct {
	Rate       float64 `json:"rate"`
	Conns      int     `json:"conns"`
	DurationS  float64 `json:"duration_s"`
	Requests   int64   `json:"requests"`
	AchievedPS float64 `json:"achieved_rps"`
	Errors     int64   `json:"errors"`
	LastError  string  `json:"last_error,omitempty"`
	P50us      int64   `json:"p50_us"`
	P99us      int64   `json:"p99_us"`
	Maxus      int64   `json:"max_us"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:39080", "target `HOST:PORT`")
	path := flag.String("path", "/", "request path")
	rate := flag.Float64("rate", 1000, "requests per second, all connections together")
	conns := flag.Int("conns", 64, "keep-alive connections")
	dur := flag.Duration("duration", 10*time.Second, "length of the run")
	slack := flag.Duration("slack", 25*time.Microsecond, "send a request due this soon with the ones due now: fewer timer wakeups")
	flag.Parse()
	if *rate <= 0 || *conns < 1 || *dur <= 0 || *slack < 0 {
		fmt.Fprintln(os.Stderr, "rategen: -rate, -conns and -duration must be positive, -slack not negative")
		os.Exit(2)
	}
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *addr + "\r\nUser-Agent: rategen\r\n\r\n")

	l, err := newLoop(*addr, req, *rate, *conns, *dur, *slack)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rategen: %s: %v\n", *addr, err)
		os.Exit(1)
	}
	elapsed := l.run()
	l.close()
	if elapsed < *dur {
		elapsed = *dur
	}
	all, errs, lastErr := l.lat, l.errs, l.last

	r := result{Rate: *rate, Conns: *conns, DurationS: elapsed.Seconds(), Errors: errs}
	if lastErr != nil {
		r.LastError = lastErr.Error()
	}
	slices.Sort(all)
	r.Requests = int64(len(all))
	r.AchievedPS = float64(r.Requests) / elapsed.Seconds()
	if n := len(all); n > 0 {
		r.P50us = all[(n-1)*50/100]
		r.P99us = all[(n-1)*99/100]
		r.Maxus = all[n-1]
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	if r.Requests == 0 {
		os.Exit(1)
	}
}
