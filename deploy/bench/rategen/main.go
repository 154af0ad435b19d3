// Command rategen is the benchmark's fixed-rate HTTP/1.1 load generator
// (wrk cannot hold a rate, and Debian has no wrk2). It opens -conns
// keep-alive connections and sends GET requests on a fixed schedule that adds
// up to -rate requests per second in total: connection i sends its k-th
// request at start + (k*conns+i)/rate. A connection that falls behind sends
// at once until it is back on schedule, so the offered rate holds as long as
// the target keeps up. Each connection has at most one request in flight.
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
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	flag.Parse()
	if *rate <= 0 || *conns < 1 || *dur <= 0 {
		fmt.Fprintln(os.Stderr, "rategen: -rate, -conns and -duration must be positive")
		os.Exit(2)
	}
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *addr + "\r\nUser-Agent: rategen\r\n\r\n")

	// Connect everything first so the schedule measures requests only.
	cs := make([]*conn, *conns)
	for i := range cs {
		c, err := dial(*addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "rategen: %v\n", err)
			os.Exit(1)
		}
		cs[i] = c
	}

	start := time.Now().Add(20 * time.Millisecond)
	end := start.Add(*dur)
	lats := make([][]int64, *conns)
	errs := make([]int64, *conns)
	lastErr := make([]error, *conns)
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cs[i]
			perConn := int(float64(*rate)*dur.Seconds()) / *conns + 1
			lat := make([]int64, 0, perConn)
			for k := 0; ; k++ {
				due := start.Add(time.Duration(float64(k**conns+i) / *rate * float64(time.Second)))
				if !due.Before(end) {
					break
				}
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				if c == nil {
					var err error
					if c, err = dial(*addr); err != nil {
						errs[i]++
						lastErr[i] = err
						continue
					}
				}
				t0 := time.Now()
				if err := c.roundTrip(req); err != nil {
					errs[i]++
					lastErr[i] = err
					c.Close()
					c = nil
					continue
				}
				lat = append(lat, int64(time.Since(t0)/time.Microsecond))
			}
			lats[i] = lat
			if c != nil {
				c.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if elapsed < *dur {
		elapsed = *dur
	}

	var all []int64
	r := result{Rate: *rate, Conns: *conns, DurationS: elapsed.Seconds()}
	for i := range lats {
		all = append(all, lats[i]...)
		r.Errors += errs[i]
		if lastErr[i] != nil {
			r.LastError = lastErr[i].Error()
		}
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

type conn struct {
	net.Conn
	r *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

// roundTrip writes one request and reads one response: a status line,
// headers, and a body of Content-Length bytes (or chunked). A response
// that says "Connection: close" is an error: the schedule needs keep-alive.
func (c *conn) roundTrip(req []byte) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		return err
	}
	status, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(status, "HTTP/1.") || len(status) < 12 {
		return fmt.Errorf("bad status line %q", status)
	}
	if code := status[9:12]; code[0] != '2' && code[0] != '3' {
		return fmt.Errorf("status %s", code)
	}
	length, chunked, closing := -1, false, false
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "content-length":
			if length, err = strconv.Atoi(v); err != nil {
				return fmt.Errorf("bad content-length %q", v)
			}
		case "transfer-encoding":
			chunked = strings.EqualFold(v, "chunked")
		case "connection":
			closing = strings.EqualFold(v, "close")
		}
	}
	switch {
	case chunked:
		if err := c.readChunked(); err != nil {
			return err
		}
	case length >= 0:
		if _, err := c.r.Discard(length); err != nil {
			return err
		}
	default:
		return errors.New("response without length")
	}
	if closing {
		return errors.New("server closed the connection")
	}
	return nil
}

func (c *conn) readChunked() error {
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return err
		}
		size, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(line, ";", 2)[0]), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if _, err := c.r.Discard(int(size) + 2); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if size == 0 {
			return nil
		}
	}
}
