// Command tlsgen is the TLS step of the benchmark (deploy/bench, issue #17):
// a load generator of new TLS connections, and the TLS backends behind the
// proxy. It has two modes:
//
//	tlsgen -addr 127.0.0.1:27115 -names a.bench.test,b.bench.test,c.bench.test -conns 32 -duration 5s [-expect a.bench.test]
//	    -conns workers for -duration, each in a loop: dial -addr, a full
//	    TLS handshake (no session cache, so never a resumption) with the
//	    next server name of -names (round-robin over all workers), write the
//	    name and "\n", read the backend's answer (its own name and "\n"),
//	    close. The answer, and the certificate the backend showed, must be
//	    -expect's name, or without -expect the name sent: anything else is a
//	    wrong-backend answer, counted apart from the other errors. Prints
//	    one line on stdout, "TLSGEN " and a JSON object:
//
//	    TLSGEN {"conns":32,"duration_s":5.01,"connections":12000,"cps":2395.2,
//	     "errors":0,"wrong_backend":0,"p50_us":9000,"p99_us":21000,"max_us":40000,
//	     "per_name":{"a.bench.test":4000,...}}
//
//	    Latency is from the dial to the last byte of the answer: the TCP
//	    connect, the handshake and one round trip. Exit status 1 when no
//	    connection succeeded.
//
//	tlsgen -serve a.bench.test=127.0.0.1:27084,b.bench.test=127.0.0.1:27085
//	    one TLS listener per site, each with a self-signed ECDSA P-256
//	    certificate for its name made at start and session tickets off,
//	    answering every connection's request line with its name, then
//	    closing. Runs until SIGTERM/SIGINT, then prints what it served.
//
// Standard library only (crypto/tls); TLS 1.3 with Go's default key shares.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	serveList := flag.String("serve", "", "serve `SITES`: name=host:port,... (one TLS listener each)")
	addr := flag.String("addr", "", "connect to `HOST:PORT` (client mode)")
	names := flag.String("names", "a.bench.test,b.bench.test,c.bench.test", "server names to send, round-robin (comma list)")
	expect := flag.String("expect", "", "the backend every connection must reach (default: the one named in its SNI)")
	conns := flag.Int("conns", 32, "concurrent workers")
	dur := flag.Duration("duration", 5*time.Second, "length of the run")
	timeout := flag.Duration("timeout", 5*time.Second, "limit of one connection, dial to answer")
	flag.Parse()
	switch {
	case *serveList != "" && *addr == "":
		sites, err := parseSites(*serveList)
		if err != nil {
			fail(2, err)
		}
		s, err := serve(sites)
		if err != nil {
			fail(1, err)
		}
		fmt.Printf("listening on %d sites\n", len(sites))
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		s.close()
		fmt.Printf("served %d connections, %d errors\n", s.served.Load(), s.errors.Load())
	case *addr != "" && *serveList == "":
		ns := splitList(*names)
		if len(ns) == 0 || *conns < 1 || *dur <= 0 {
			fail(2, errors.New("-names, -conns and -duration must name something positive"))
		}
		r := run(client{addr: *addr, names: ns, expect: *expect, conns: *conns, dur: *dur, timeout: *timeout})
		line, _ := json.Marshal(r)
		fmt.Printf("TLSGEN %s\n", line)
		if r.Connections == 0 {
			os.Exit(1)
		}
	default:
		fail(2, errors.New("exactly one of -serve SITES or -addr HOST:PORT"))
	}
}

func fail(code int, err error) {
	fmt.Fprintf(os.Stderr, "tlsgen: %v\n", err)
	os.Exit(code)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

type site struct{ name, addr string }

func parseSites(s string) ([]site, error) {
	var sites []site
	for _, f := range splitList(s) {
		name, a, ok := strings.Cut(f, "=")
		if !ok || name == "" || a == "" {
			return nil, fmt.Errorf("-serve: %q is not name=host:port", f)
		}
		sites = append(sites, site{name, a})
	}
	if len(sites) == 0 {
		return nil, errors.New("-serve names no site")
	}
	return sites, nil
}

// server is the running listeners of -serve.
type server struct {
	lns            []net.Listener
	served, errors atomic.Int64
	wg             sync.WaitGroup
}

// serve starts one listener per site (an address with port 0 takes a free
// port: the tests use that; lns[i].Addr() tells which).
func serve(sites []site) (*server, error) {
	s := &server{}
	for _, st := range sites {
		cert, err := selfSigned(st.name)
		if err != nil {
			s.close()
			return nil, err
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, SessionTicketsDisabled: true, MinVersion: tls.VersionTLS12}
		ln, err := net.Listen("tcp", st.addr)
		if err != nil {
			s.close()
			return nil, err
		}
		s.lns = append(s.lns, ln)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.accept(ln, cfg, []byte(st.name+"\n"))
		}()
	}
	return s, nil
}

func (s *server) accept(ln net.Listener, cfg *tls.Config, answer []byte) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.errors.Add(1)
			time.Sleep(5 * time.Millisecond) // out of fds: do not spin
			continue
		}
		go func() {
			if err := answerOne(tls.Server(c, cfg), answer); err != nil {
				s.errors.Add(1)
			} else {
				s.served.Add(1)
			}
		}()
	}
}

// answerOne: the handshake, one request line, the site's name, close.
func answerOne(c *tls.Conn, answer []byte) error {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReaderSize(c, 512).ReadSlice('\n'); err != nil {
		return err
	}
	_, err := c.Write(answer)
	return err
}

func (s *server) close() {
	for _, ln := range s.lns {
		ln.Close()
	}
	s.wg.Wait()
}

// selfSigned makes an ECDSA P-256 key and a certificate for name, valid
// from an hour ago for a day.
func selfSigned(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

type client struct {
	addr    string
	names   []string
	expect  string
	conns   int
	dur     time.Duration
	timeout time.Duration
}

// result is the TLSGEN line.
type result struct {
	Conns        int              `json:"conns"`
	DurationS    float64          `json:"duration_s"`
	Connections  int64            `json:"connections"`
	CPS          float64          `json:"cps"`
	Errors       int64            `json:"errors"`
	WrongBackend int64            `json:"wrong_backend"`
	LastError    string           `json:"last_error,omitempty"`
	LastWrong    string           `json:"last_wrong,omitempty"`
	P50us        int64            `json:"p50_us"`
	P99us        int64            `json:"p99_us"`
	Maxus        int64            `json:"max_us"`
	PerName      map[string]int64 `json:"per_name"`
}

// errWrong is a connection that reached a backend other than the one it
// asked for.
type errWrong struct{ sent, want, got string }

func (e errWrong) Error() string {
	return fmt.Sprintf("sent SNI %s, want backend %s, got %s", e.sent, e.want, e.got)
}

// worker is one worker's tally, merged at the end.
type worker struct {
	lat              []int64 // µs, of the successful connections
	errs, wrong      int64
	lastErr, lastBad error
	perName          []int64
}

func run(c client) result {
	var next atomic.Uint64
	ws := make([]worker, c.conns)
	start := time.Now()
	end := start.Add(c.dur)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &ws[i]
			w.perName = make([]int64, len(c.names))
			for time.Now().Before(end) {
				k := int((next.Add(1) - 1) % uint64(len(c.names)))
				want := c.expect
				if want == "" {
					want = c.names[k]
				}
				t0 := time.Now()
				err := c.one(c.names[k], want)
				var bad errWrong
				switch {
				case errors.As(err, &bad):
					w.wrong++
					w.lastBad = err
				case err != nil:
					w.errs++
					w.lastErr = err
					time.Sleep(5 * time.Millisecond) // a refusing target: do not spin
				default:
					w.lat = append(w.lat, int64(time.Since(t0)/time.Microsecond))
					w.perName[k]++
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := result{Conns: c.conns, DurationS: elapsed.Seconds(), PerName: map[string]int64{}}
	var all []int64
	for i := range ws {
		w := &ws[i]
		all = append(all, w.lat...)
		r.Errors += w.errs
		r.WrongBackend += w.wrong
		if w.lastErr != nil {
			r.LastError = w.lastErr.Error()
		}
		if w.lastBad != nil {
			r.LastWrong = w.lastBad.Error()
		}
		for k, n := range w.perName {
			r.PerName[c.names[k]] += n
		}
	}
	slices.Sort(all)
	r.Connections = int64(len(all))
	r.CPS = float64(r.Connections) / elapsed.Seconds()
	if n := len(all); n > 0 {
		r.P50us = all[(n-1)*50/100]
		r.P99us = all[(n-1)*99/100]
		r.Maxus = all[n-1]
	}
	return r
}

// one is one connection: dial, full handshake with SNI name, request,
// answer, close. The backend must be want: by its certificate and by its
// answer.
func (c client) one(name, want string) error {
	raw, err := net.DialTimeout("tcp", c.addr, c.timeout)
	if err != nil {
		return err
	}
	_ = raw.SetDeadline(time.Now().Add(c.timeout))
	// No ClientSessionCache: every connection is a full handshake.
	tc := tls.Client(raw, &tls.Config{ServerName: name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	defer tc.Close()
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
		if got := cs.PeerCertificates[0].Subject.CommonName; got != want {
			return errWrong{sent: name, want: want, got: "certificate " + got}
		}
	}
	if _, err := io.WriteString(tc, name+"\n"); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	line, err := bufio.NewReaderSize(tc, 512).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if got := strings.TrimSuffix(line, "\n"); got != want {
		return errWrong{sent: name, want: want, got: got}
	}
	return nil
}
