package session

import (
	"net/netip"
	"testing"
	"time"

	"ringproxy/session/route"
	"ringproxy/session/testbed"
)

// inspectingWorker is a worker over a fake engine with one session in
// inspection on a frontend routing a.example.com to backend a.
func inspectingWorker(t testing.TB) (*worker, *Session) {
	t.Helper()
	be := &Backend{Name: "a", Balance: "roundrobin", TimeoutConnect: time.Second, TimeoutServer: time.Minute, Retries: 3,
		Servers: []*Server{{Name: "s1", Address: netip.MustParseAddrPort("127.0.0.1:9"), Weight: 100}}}
	fe := &Frontend{Name: "web", TimeoutClient: time.Minute, InspectTimeout: time.Second,
		Routes: []*Route{
			{Rule: route.Rule{Source: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, Backend: be},
			{Rule: route.Rule{SNI: []string{"x.example.com", "*.a.example.com"}, ALPN: []string{"h2"}}, Backend: be},
			{Rule: route.Rule{SNI: []string{"a.example.com"}}, Backend: be},
		}}
	w, l := workerOver(t, fe, be)
	w.startSession(l, 1000, netip.MustParseAddrPort("192.0.2.1:5000"))
	s := w.slab.At(0)
	if s.state != stInspect {
		t.Fatalf("state %d, want inspect", s.state)
	}
	return w, s
}

// Deciding a session's route from a ClientHello over two buffers (the
// parse, the protocol detection, the matching of every route) allocates
// nothing.
func TestInspectionAllocatesNothing(t *testing.T) {
	w, s := inspectingWorker(t)
	hello := testbed.ClientHello(t, "a.example.com", "h2")
	for i, part := range [][]byte{hello[:1000], hello[1000:]} {
		n := copy(w.eng.Buffer(uint16(i)), part)
		w.push(&s.req, uint16(i), uint32(n))
	}
	d := w.decide(s, false)
	if d.wait || d.route != 2 || d.outcome != InspectTLS || string(w.hello.NameBytes()) != "a.example.com" {
		t.Fatalf("decision %+v, SNI %q; want route 2 (index), tls", d, w.hello.NameBytes())
	}
	if n := testing.AllocsPerRun(1000, func() { w.decide(s, false) }); n != 0 {
		t.Fatalf("deciding allocates %.1f times", n)
	}
}

// A ClientHello arriving a byte at a time is parsed about once a record,
// not once a byte: clienthello.Need gates the parse.
func TestInspectionParsesOnceNeeded(t *testing.T) {
	w, s := inspectingWorker(t)
	hello := testbed.ClientHello(t, "a.example.com")
	parses := 0
	for i := range hello {
		buf := w.eng.Buffer(uint16(i % 2))
		if s.req.n == 0 {
			buf[0] = hello[i]
			w.push(&s.req, 0, 1)
		} else {
			seg := &w.segs[s.req.tail]
			w.eng.Buffer(s.req.tail)[seg.off+seg.len] = hello[i]
			seg.len++
		}
		before := s.helloNeed
		d := w.decide(s, false)
		if queuedLen(w.queuedBytes(&s.req)) >= int(before) {
			parses++
		}
		if !d.wait {
			if i != len(hello)-1 || d.route != 2 {
				t.Fatalf("decided %+v at byte %d of %d", d, i+1, len(hello))
			}
		}
	}
	if parses > 12 {
		t.Errorf("%d parses for a %d-byte hello a byte at a time", parses, len(hello))
	}
}

// BenchmarkInspectionDecide is the CPU the routing decision itself costs
// a session: detecting TLS, parsing a 1.5 KB ClientHello over two
// buffers and matching three routes.
func BenchmarkInspectionDecide(b *testing.B) {
	w, s := inspectingWorker(b)
	hello := testbed.ClientHello(b, "a.example.com", "h2")
	for i, part := range [][]byte{hello[:1000], hello[1000:]} {
		n := copy(w.eng.Buffer(uint16(i)), part)
		w.push(&s.req, uint16(i), uint32(n))
	}
	b.ReportAllocs()
	for b.Loop() {
		w.decide(s, false)
	}
}
