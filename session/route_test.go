package session_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/proxyproto"
	"ringproxy/session/route"
	"ringproxy/session/testbed"
)

// routed is a frontend "web" with routes; its backends are named after
// their single server's role.
type routed struct {
	cfg *session.Config
	bes map[string]*session.Backend
}

func newRouted(eng string) *routed {
	cfg := testConfig(eng)
	cfg.Backends = nil
	fe := cfg.Frontends[0]
	fe.BackendName, fe.Backend = "", nil
	fe.InspectTimeout = 2 * time.Second
	return &routed{cfg: cfg, bes: map[string]*session.Backend{}}
}

// backend adds a backend named name with one server at addr.
func (r *routed) backend(name string, addr netip.AddrPort) *session.Backend {
	be := testConfig(r.cfg.Global.Engine, addr).Backends[0]
	be.Name = name
	r.cfg.Backends = append(r.cfg.Backends, be)
	r.bes[name] = be
	return be
}

// route appends a route to backend name.
func (r *routed) route(rule route.Rule, name string) {
	fe := r.cfg.Frontends[0]
	fe.Routes = append(fe.Routes, &session.Route{Rule: rule, BackendName: name, Backend: r.bes[name]})
}

// fallback makes name the frontend's default backend.
func (r *routed) fallback(name string) {
	fe := r.cfg.Frontends[0]
	fe.BackendName, fe.Backend = name, r.bes[name]
}

// dialTLS does a TLS handshake through addr with server name sni (none
// when "") offering protos, and returns the backend's first line.
func dialTLS(addr netip.AddrPort, sni string, protos ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(c, &tls.Config{ServerName: sni, NextProtos: protos, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return "", fmt.Errorf("handshake for %q: %w", sni, err)
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestRouteBySNIAndALPN(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		r := newRouted(eng)
		for _, n := range []string{"a", "b", "h2", "default"} {
			r.backend(n, testbed.StartTLSNamed(t, n).Addr())
		}
		r.route(route.Rule{SNI: []string{"a.example.com"}}, "a")
		r.route(route.Rule{SNI: []string{"*.b.example.com"}}, "b")
		r.route(route.Rule{ALPN: []string{"h2"}}, "h2")
		r.fallback("default")
		p, addr := startProxy(t, r.cfg)
		for _, c := range []struct {
			sni    string
			protos []string
			want   string
		}{
			{"a.example.com", nil, "a a.example.com"},
			{"A.Example.COM", nil, "a A.Example.COM"}, // matched without case; sent as it was
			{"x.b.example.com", nil, "b x.b.example.com"},
			{"y.z.b.example.com", []string{"h2"}, "b y.z.b.example.com"},
			{"b.example.com", []string{"http/1.1"}, "default b.example.com"}, // the wildcard takes labels under it only
			{"c.example.com", []string{"http/1.1", "h2"}, "h2 c.example.com"},
			{"", nil, "default -"},
			{"c.example.com", nil, "default c.example.com"},
		} {
			got, err := dialTLS(addr, c.sni, c.protos...)
			if err != nil || got != c.want {
				t.Errorf("sni %q alpn %v: got %q, %v; want %q", c.sni, c.protos, got, err, c.want)
			}
		}
		fs := p.Snapshot().Frontends[0]
		hits := make([]uint64, len(fs.Routes))
		for i, rs := range fs.Routes {
			hits[i] = rs.Hits
		}
		if fmt.Sprint(hits) != "[2 2 1 3]" || fs.Routes[3].Backend != "default" || !fs.Routes[3].Default {
			t.Errorf("route hits %v (%+v), want [2 2 1 3] with the default last", hits, fs.Routes)
		}
		if n := p.Stats().Inspected[session.InspectTLS]; n != 8 {
			t.Errorf("inspected tls = %d, want 8", n)
		}
	})
}

func TestNoRouteCloses(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		r := newRouted(eng)
		r.backend("a", testbed.StartTLSNamed(t, "a").Addr())
		r.route(route.Rule{SNI: []string{"a.example.com"}}, "a")
		p, addr := startProxy(t, r.cfg)
		if got, err := dialTLS(addr, "a.example.com"); got != "a a.example.com" {
			t.Fatalf("routed client: %q, %v", got, err)
		}
		if got, err := dialTLS(addr, "other.example.com"); err == nil {
			t.Fatalf("unrouted client got %q", got)
		}
		testbed.WaitFor(t, 2*time.Second, func() bool { return p.Snapshot().Frontends[0].Ended["no-route"] == 1 }, "one no-route end")
		if rs := p.Snapshot().Frontends[0].Routes; rs[1].Hits != 1 || rs[1].Backend != "" {
			t.Errorf("default route: %+v, want 1 hit and no backend", rs[1])
		}
	})
}

// helloReporter is a plain TCP backend standing in for a TLS server: it
// reads the ClientHello record, answers "name sha256-of-the-record\n",
// then echoes.
func helloReporter(t *testing.T, name string) netip.AddrPort {
	return testbed.StartFunc(t, func(c *net.TCPConn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		head := make([]byte, 5)
		if _, err := io.ReadFull(c, head); err != nil {
			return
		}
		body := make([]byte, int(head[3])<<8|int(head[4]))
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		fmt.Fprintf(c, "%s %x\n", name, sha256.Sum256(append(head, body...)))
		io.Copy(c, c)
		c.CloseWrite()
	}).Addr()
}

// sendHello writes hello to addr as write says, and returns the first
// line of the answer.
func sendHello(t *testing.T, addr netip.AddrPort, hello []byte, write func(c *net.TCPConn, hello []byte)) string {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetNoDelay(true)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	write(c, hello)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// A ClientHello a byte at a time, and one of over 2 KB in two writes
// (what a browser's post-quantum hello is over two segments), are routed
// on their SNI and reach the backend unchanged.
func TestRouteHelloInPieces(t *testing.T) {
	long := []string{strings.Repeat("p", 250), strings.Repeat("q", 250), "h2"}
	forEngines(t, func(t *testing.T, eng string) {
		r := newRouted(eng)
		r.backend("a", helloReporter(t, "a"))
		r.backend("default", helloReporter(t, "default"))
		r.route(route.Rule{SNI: []string{"a.example.com"}}, "a")
		r.fallback("default")
		_, addr := startProxy(t, r.cfg)
		small := testbed.ClientHello(t, "a.example.com")
		big := testbed.ClientHello(t, "a.example.com", long...)
		if len(big) < 2000 {
			t.Fatalf("the long ClientHello is only %d bytes", len(big))
		}
		byByte := func(c *net.TCPConn, h []byte) {
			for i := range h {
				c.Write(h[i : i+1])
				if i%16 == 0 {
					time.Sleep(100 * time.Microsecond) // apart, so receives get a few bytes each
				}
			}
		}
		twoWrites := func(c *net.TCPConn, h []byte) {
			c.Write(h[:1400])
			time.Sleep(30 * time.Millisecond)
			c.Write(h[1400:])
		}
		for _, c := range []struct {
			name  string
			hello []byte
			write func(*net.TCPConn, []byte)
		}{{"byte at a time", small, byByte}, {"two writes", big, twoWrites}, {"long byte at a time", big, byByte}} {
			want := fmt.Sprintf("a %x", sha256.Sum256(c.hello))
			if got := sendHello(t, addr, c.hello, c.write); got != want {
				t.Errorf("%s (%d bytes): got %q, want %q", c.name, len(c.hello), got, want)
			}
		}
	})
}

// The same hello over 100-byte TLS records.
func TestRouteHelloOverRecords(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		r := newRouted(eng)
		r.backend("a", testbed.StartFunc(t, func(c *net.TCPConn) {
			io.WriteString(c, "a\n")
			io.Copy(io.Discard, c)
		}).Addr())
		r.route(route.Rule{SNI: []string{"a.example.com"}}, "a")
		_, addr := startProxy(t, r.cfg)
		split := testbed.OverRecords(testbed.ClientHello(t, "a.example.com"), 100)
		if got := sendHello(t, addr, split, func(c *net.TCPConn, h []byte) { c.Write(h) }); got != "a" {
			t.Errorf("hello over %d records: got %q", len(split)/105+1, got)
		}
	})
}

// Protocols where the server speaks first send nothing: at
// inspect_timeout the routes are decided on nothing (protocol none), and
// the other protocols are told apart on their first bytes.
func TestRouteByProtocol(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		r := newRouted(eng)
		for _, n := range []string{"ssh", "http", "tls", "banner", "default"} {
			r.backend(n, testbed.StartNamed(t, n).Addr())
		}
		r.route(route.Rule{Protocol: route.SSH}, "ssh")
		r.route(route.Rule{Protocol: route.HTTP}, "http")
		r.route(route.Rule{Protocol: route.TLS}, "tls")
		r.route(route.Rule{Protocol: route.None}, "banner")
		r.fallback("default")
		r.cfg.Frontends[0].InspectTimeout = 300 * time.Millisecond
		p, addr := startProxy(t, r.cfg)
		hello := testbed.ClientHello(t, "x.example.com")
		for _, c := range []struct {
			first, want string
		}{
			{"SSH-2.0-OpenSSH_9.6\r\n", "ssh"},
			{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "http"},
			{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http"},
			{string(hello), "tls"},
			{"*1\r\n$4\r\nPING\r\n", "default"},
			{"", "banner"},
		} {
			start := time.Now()
			got := sendHello(t, addr, []byte(c.first), func(c *net.TCPConn, b []byte) { c.Write(b) })
			took := time.Since(start)
			if got != c.want {
				t.Errorf("first bytes %.12q: routed to %q, want %q", c.first, got, c.want)
			}
			if c.first == "" && (took < 250*time.Millisecond || took > 2*time.Second) {
				t.Errorf("a silent client was routed after %v, want about inspect_timeout (300ms)", took)
			}
			if c.first != "" && took > 250*time.Millisecond {
				t.Errorf("first bytes %.12q: routed after %v, want at once", c.first, took)
			}
		}
		st := p.Stats()
		if st.Inspected[session.InspectSSH] != 1 || st.Inspected[session.InspectHTTP] != 2 || st.Inspected[session.InspectTLS] != 1 ||
			st.Inspected[session.InspectOther] != 1 || st.Inspected[session.InspectNone] != 1 {
			t.Errorf("inspected: %v", st.Inspected)
		}
	})
}

// A record that is not a ClientHello, and one cut short by the client's
// FIN, go to the default or are closed, as on_bad_hello says; garbage
// without a default is closed as no-route. Each is counted.
func TestRouteBadHello(t *testing.T) {
	notHello := []byte{0x16, 3, 1, 0, 4, 2, 0, 0, 0} // a ServerHello type
	cut := testbed.ClientHello(t, "a.example.com")[:300]
	forEngines(t, func(t *testing.T, eng string) {
		for _, closeIt := range []bool{false, true} {
			r := newRouted(eng)
			r.backend("a", testbed.StartNamed(t, "a").Addr())
			r.backend("default", testbed.StartNamed(t, "default").Addr())
			r.route(route.Rule{SNI: []string{"a.example.com"}}, "a")
			r.fallback("default")
			r.cfg.Frontends[0].BadHelloClose = closeIt
			p, addr := startProxy(t, r.cfg)
			halfClose := func(c *net.TCPConn, b []byte) { c.Write(b); c.CloseWrite() }
			want := "default"
			if closeIt {
				want = ""
			}
			for _, in := range [][]byte{notHello, cut} {
				if got := sendHello(t, addr, in, halfClose); got != want {
					t.Errorf("on_bad_hello close=%v, % x...: got %q, want %q", closeIt, in[:9], got, want)
				}
			}
			if got := sendHello(t, addr, []byte("garbage\n"), halfClose); got != "default" {
				t.Errorf("garbage: got %q, want the default", got)
			}
			st := p.Stats()
			if st.Inspected[session.InspectBadHello] != 1 || st.Inspected[session.InspectTruncated] != 1 || st.Inspected[session.InspectOther] != 1 {
				t.Errorf("close=%v: inspected %v", closeIt, st.Inspected)
			}
			if closeIt {
				testbed.WaitFor(t, 2*time.Second, func() bool { return p.Snapshot().Frontends[0].Ended["bad-hello"] == 2 }, "two bad-hello ends")
			}
		}
	})
}

// Everything after the ClientHello crosses intact both ways, in random
// chunks, with routing on.
func TestRoutedIntegrity(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		r := newRouted(eng)
		r.backend("a", helloReporter(t, "a"))
		r.route(route.Rule{SNI: []string{"a.example.com"}}, "a")
		_, addr := startProxy(t, r.cfg)
		hello := testbed.ClientHello(t, "a.example.com", "h2")
		for i := range 4 {
			size := 1<<20 + i*77777
			c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(addr))
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			payload := make([]byte, size)
			for j := range payload {
				payload[j] = byte(rng.Uint32())
			}
			sent := make(chan error, 1)
			go func() {
				stream := append(append([]byte(nil), hello...), payload...)
				for len(stream) > 0 {
					n := min(len(stream), 1+rng.IntN(40000))
					if _, err := c.Write(stream[:n]); err != nil {
						sent <- err
						return
					}
					stream = stream[n:]
				}
				sent <- c.CloseWrite()
			}()
			got, err := io.ReadAll(c)
			c.Close()
			if err := <-sent; err != nil {
				t.Fatalf("writing: %v", err)
			}
			head, rest, _ := bytes.Cut(got, []byte("\n"))
			if want := fmt.Sprintf("a %x", sha256.Sum256(hello)); string(head) != want || err != nil {
				t.Fatalf("answer %q, %v; want %q", head, err, want)
			}
			if sha256.Sum256(rest) != sha256.Sum256(payload) {
				t.Fatalf("%d bytes sent after the hello, %d came back, or not the same", len(payload), len(rest))
			}
		}
	})
}

// With accept_proxy the PROXY header is read first, then the ClientHello;
// a source route sees the address the header carried; with send_proxy v2
// the backend gets the SNI as the authority TLV.
func TestRouteAfterProxyHeaderWithAuthority(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		r := newRouted(eng)
		r.backend("lan", testbed.StartNamed(t, "lan").Addr())
		r.backend("a", authorityReporter(t))
		r.cfg.Backends[1].SendProxy = "v2"
		r.route(route.Rule{Source: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "lan")
		r.route(route.Rule{SNI: []string{"a.example.com"}}, "a")
		r.cfg.Frontends[0].AcceptProxy = true
		_, addr := startProxy(t, r.cfg)
		hello := testbed.ClientHello(t, "a.example.com")
		dst := netip.MustParseAddrPort("198.51.100.1:443")
		lan := proxyproto.AppendV1(nil, netip.MustParseAddrPort("10.1.1.1:4000"), dst)
		out := proxyproto.AppendV2(nil, netip.MustParseAddrPort("203.0.113.9:4000"), dst)
		together := func(c *net.TCPConn, b []byte) { c.Write(b) }
		apart := func(c *net.TCPConn, b []byte) {
			c.Write(b[:len(out)])
			time.Sleep(20 * time.Millisecond)
			c.Write(b[len(out):])
		}
		if got := sendHello(t, addr, append(lan, hello...), together); got != "lan" {
			t.Errorf("from 10.1.1.1: got %q, want lan", got)
		}
		for _, write := range []func(*net.TCPConn, []byte){together, apart} {
			if got := sendHello(t, addr, append(out, hello...), write); got != "203.0.113.9 a.example.com" {
				t.Errorf("from 203.0.113.9: got %q, want the PROXY source and the authority a.example.com", got)
			}
		}
	})
}

// authorityReporter reads a PROXY v2 header and answers "SRC AUTHORITY\n"
// from its source address and PP2_TYPE_AUTHORITY TLV ("-" if none).
func authorityReporter(t *testing.T) netip.AddrPort {
	return testbed.StartFunc(t, func(c *net.TCPConn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fixed := make([]byte, proxyproto.V2HeaderLen)
		if _, err := io.ReadFull(c, fixed); err != nil {
			return
		}
		rest := make([]byte, binary.BigEndian.Uint16(fixed[14:]))
		if _, err := io.ReadFull(c, rest); err != nil {
			return
		}
		hdr, _, err := proxyproto.Parse(append(fixed, rest...))
		if err != nil {
			io.WriteString(c, "bad header: "+err.Error()+"\n")
			return
		}
		authority := "-"
		tlvs := rest[12:] // after an IPv4 address block
		for len(tlvs) >= 3 {
			n := int(binary.BigEndian.Uint16(tlvs[1:]))
			if tlvs[0] == proxyproto.TypeAuthority {
				authority = string(tlvs[3 : 3+n])
			}
			tlvs = tlvs[3+n:]
		}
		fmt.Fprintf(c, "%s %s\n", hdr.Src.Addr(), authority)
		io.Copy(io.Discard, c)
	}).Addr()
}

// The access line of a routed session names its backend and ends with the
// SNI; one no route took names the frontend and says P, in inspection (R).
func TestRoutedAccessLog(t *testing.T) {
	r := newRouted("uring")
	r.backend("a", testbed.StartTLSNamed(t, "a").Addr())
	r.route(route.Rule{SNI: []string{"a.example.com"}}, "a")
	addr, lines := startLogged(t, r.cfg)
	if got, err := dialTLS(addr, "a.example.com"); got != "a a.example.com" {
		t.Fatalf("routed: %q, %v", got, err)
	}
	dialTLS(addr, "evil}\x01.example.com")
	testbed.WaitFor(t, 3*time.Second, func() bool { return strings.Count(lines.String(), "\n") >= 2 }, "two access lines")
	if got := lines.Lines(" web a/s1 "); len(got) != 1 || !strings.HasSuffix(got[0], " {a.example.com}") {
		t.Errorf("routed session's line: %q", lines.String())
	}
	// The name as the client sent it, its line-breaking bytes escaped.
	if got := lines.Lines(" web web/<NOSRV> ", " PR "); len(got) != 1 || !strings.HasSuffix(got[0], " {evil#7D#01.example.com}") {
		t.Errorf("unrouted session's line: %q", lines.String())
	}
}

// A ClientHello beyond what inspection holds goes to the default, and is
// counted: one over MaxHello by its length, and one larger than the
// channel's buffers hold (1 KiB buffers). With 16 KiB buffers the same
// 6 KB hello is routed on its SNI.
func TestRouteHelloTooLarge(t *testing.T) {
	var protos []string
	for i := range 20 {
		protos = append(protos, strings.Repeat(string(rune('a'+i)), 250))
	}
	long := testbed.ClientHello(t, "a.example.com", protos...)
	over := append([]byte{0x16, 3, 1, 0x40, 0, 1, 0, 0x50, 0}, make([]byte, 2000)...)
	forEngines(t, func(t *testing.T, eng string) {
		for _, bufSize := range []int{1 << 10, 16 << 10} {
			r := newRouted(eng)
			r.cfg.Global.BufSize = bufSize
			r.backend("a", testbed.StartNamed(t, "a").Addr())
			r.backend("default", testbed.StartNamed(t, "default").Addr())
			r.route(route.Rule{SNI: []string{"a.example.com"}}, "a")
			r.fallback("default")
			p, addr := startProxy(t, r.cfg)
			write := func(c *net.TCPConn, b []byte) { c.Write(b) }
			if got := sendHello(t, addr, over, write); got != "default" {
				t.Errorf("bufsize %d: a hello over MaxHello went to %q", bufSize, got)
			}
			want := "default"
			if bufSize == 16<<10 {
				want = "a"
			}
			if got := sendHello(t, addr, long, write); got != want {
				t.Errorf("bufsize %d: a %d-byte hello went to %q, want %q", bufSize, len(long), got, want)
			}
			tooLarge := p.Stats().Inspected[session.InspectTooLarge]
			if (bufSize == 1<<10 && tooLarge != 2) || (bufSize == 16<<10 && tooLarge != 1) {
				t.Errorf("bufsize %d: %d counted too large", bufSize, tooLarge)
			}
		}
	})
}

// A client that sends nothing (the server speaks first) is sent to the
// default once inspect_timeout passes, though the routes look for a SNI.
func TestSilentClientFallsToDefault(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		r := newRouted(eng)
		r.backend("a", testbed.StartNamed(t, "a").Addr())
		r.backend("db", testbed.StartNamed(t, "db").Addr())
		r.route(route.Rule{SNI: []string{"a.example.com"}}, "a")
		r.fallback("db")
		r.cfg.Frontends[0].InspectTimeout = 200 * time.Millisecond
		_, addr := startProxy(t, r.cfg)
		start := time.Now()
		line, err := testbed.ReadLine(addr, 3*time.Second)
		if took := time.Since(start); line != "db" || took < 180*time.Millisecond || took > 2*time.Second {
			t.Errorf("silent client: %q, %v after %v; want db after about 200ms", line, err, took)
		}
	})
}
