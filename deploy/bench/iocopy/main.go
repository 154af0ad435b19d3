// Command iocopy is the benchmark's goroutine-per-connection TCP proxy: what
// a Go programmer writes first. An accept loop per listener; per client
// connection, a dial to the backend and two goroutines running io.Copy, one
// each way, each closing the write side of its destination (CloseWrite) when
// its source reaches EOF. It exists only to be measured against ringproxy
// (deploy/bench); it has no timeouts, limits or logging.
//
//	iocopy -route 127.0.0.1:39140=127.0.0.1:39080 [-route LISTEN=BACKEND ...]
//
// The benchmark runs it pinned to one CPU with GOMAXPROCS=1. Note that Go's
// io.Copy between two TCP connections splices through a pipe, and a copy
// waiting for data holds its pipe: an idle connection costs six fds here
// (two sockets, two pipes), not two.
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
	"strings"
	"syscall"
	"time"
)

type routes []string

func (r *routes) String() string     { return strings.Join(*r, ",") }
func (r *routes) Set(s string) error { *r = append(*r, s); return nil }

func main() {
	var rs routes
	flag.Var(&rs, "route", "LISTEN=BACKEND address pair (repeatable)")
	flag.Parse()
	log.SetFlags(0)
	if len(rs) == 0 {
		fmt.Fprintln(os.Stderr, "iocopy: at least one -route LISTEN=BACKEND")
		os.Exit(2)
	}
	for _, r := range rs {
		listen, backend, ok := strings.Cut(r, "=")
		if !ok {
			log.Fatalf("iocopy: bad -route %q (want LISTEN=BACKEND)", r)
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			log.Fatalf("iocopy: %v", err)
		}
		go serve(ln, backend)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
}

func serve(ln net.Listener, backend string) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of fds, say: back off as net/http's server does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			log.Printf("iocopy: accept: %v; retrying in %v", err, delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go proxy(c.(*net.TCPConn), backend)
	}
}

func proxy(client *net.TCPConn, backend string) {
	defer client.Close()
	s, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	server := s.(*net.TCPConn)
	defer server.Close()
	done := make(chan struct{})
	go func() {
		pipe(server, client)
		close(done)
	}()
	pipe(client, server)
	<-done
}

// pipe copies src to dst until EOF or an error, then forwards the FIN.
func pipe(dst, src *net.TCPConn) {
	_, err := io.Copy(dst, src)
	if err != nil {
		// A reset on one side: tear both down so the other copy ends too.
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
}
