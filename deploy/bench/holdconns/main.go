// Command holdconns opens many TCP connections and keeps them idle, so the
// benchmark (deploy/bench) can read a proxy's memory per held connection.
// It has two modes:
//
//	holdconns -sink 127.0.0.1:39082
//	    accept every connection and hold it, reading and discarding whatever
//	    arrives, until the peer closes; the backend behind the proxy.
//
//	holdconns -connect 127.0.0.1:39112 -n 5000 [-parallel 100] [-hold 10m]
//	    open n connections (at most -parallel connecting at once), print
//	    "connected N failed M" on stdout once every attempt is done, then send
//	    nothing and hold them until SIGTERM/SIGINT, until stdin reaches EOF
//	    when -stdin is set, or until -hold has passed; then close them all.
//
// It raises its RLIMIT_NOFILE soft limit to the hard limit (Go does this by
// itself since 1.19; done here explicitly so the limit is visible).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	sink := flag.String("sink", "", "listen on `ADDR` and hold every accepted connection")
	connect := flag.String("connect", "", "open connections to `ADDR`")
	n := flag.Int("n", 5000, "connections to open (-connect)")
	parallel := flag.Int("parallel", 100, "connects in flight at once (-connect)")
	hold := flag.Duration("hold", 10*time.Minute, "hold the connections this long at most (-connect)")
	stdin := flag.Bool("stdin", false, "also stop when stdin reaches EOF (-connect)")
	flag.Parse()

	raiseNofile()
	switch {
	case *sink != "" && *connect == "":
		runSink(*sink)
	case *connect != "" && *sink == "":
		runConnect(*connect, *n, *parallel, *hold, *stdin)
	default:
		fmt.Fprintln(os.Stderr, "holdconns: exactly one of -sink ADDR or -connect ADDR")
		os.Exit(2)
	}
}

func raiseNofile() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func runSink(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("holdconns: %v", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				log.Printf("holdconns: accept: %v", err)
				time.Sleep(10 * time.Millisecond) // EMFILE: do not spin
				continue
			}
			go func() {
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	waitSignal()
}

func runConnect(addr string, n, parallel int, hold time.Duration, stdin bool) {
	if parallel < 1 {
		parallel = 1
	}
	conns := make([]net.Conn, n)
	var failed atomic.Int64
	var lastErr atomic.Value
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var err error
			for try := 0; try < 3; try++ {
				var c net.Conn
				if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
					conns[i] = c
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			failed.Add(1)
			lastErr.Store(err.Error())
		}()
	}
	wg.Wait()
	fmt.Printf("connected %d failed %d\n", int64(n)-failed.Load(), failed.Load())
	if e, ok := lastErr.Load().(string); ok {
		fmt.Fprintf(os.Stderr, "holdconns: last connect error: %s\n", e)
	}

	stop := make(chan struct{}, 3)
	go func() { waitSignal(); stop <- struct{}{} }()
	if stdin {
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop <- struct{}{} }()
	}
	select {
	case <-stop:
	case <-time.After(hold):
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

func waitSignal() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
}
