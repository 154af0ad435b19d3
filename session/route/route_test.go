package route

import (
	"net/netip"
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	cases := []struct {
		in    string
		final bool
		want  Protocol
	}{
		{"", false, Unknown},
		{"", true, None},
		{"\x16", false, Unknown},
		{"\x16", true, Other},
		{"\x16\x03\x01", false, TLS},
		{"\x16\x02", false, Other},
		{"\x80\x2e\x01\x03\x01", false, Other}, // SSLv2-compatible hello
		{"SS", false, Unknown},
		{"SS", true, Other},
		{"SSH-2.0-OpenSSH_9.6\r\n", false, SSH},
		{"SSX", false, Other},
		{"G", false, Unknown},
		{"GET / HTTP/1.1\r\n", false, HTTP},
		{"GET", true, Other},
		{"GETX", false, Other},
		{"OPTIONS * HTTP/1.1", false, HTTP},
		{"PATCH /x", false, HTTP},
		{"PRI * HTTP/2.0\r\n\r\nSM", false, HTTP},
		{"PRI * HTTP/1", false, Other},
		{"get / HTTP/1.1", false, Other},                   // methods are case-sensitive
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", false, Other}, // PostgreSQL SSLRequest
		{"*1\r\n$4\r\nPING\r\n", false, Other},
	}
	for _, c := range cases {
		if got := Detect([]byte(c.in), c.final); got != c.want {
			t.Errorf("Detect(%q, final=%v) = %s, want %s", c.in, c.final, got, c.want)
		}
	}
}

// TestDetectPrefixes: a prefix of a stream is Unknown or already what the
// whole stream is, never something else; a decided answer never changes.
func TestDetectPrefixes(t *testing.T) {
	for _, s := range []string{"\x16\x03\x01\x02\x00", "SSH-2.0-x\r\n", "GET / HTTP/1.0\r\n", "PRI * HTTP/2.0\r\n", "POST /a", "hello world"} {
		whole := Detect([]byte(s), true)
		for i := range len(s) {
			got := Detect([]byte(s[:i]), false)
			if got != Unknown && got != whole {
				t.Errorf("%q: prefix %q gives %s, the whole %s", s, s[:i], got, whole)
			}
		}
	}
}

func TestPattern(t *testing.T) {
	good := map[string]string{"A.Example.COM": "a.example.com", "*.b.example.com": "*.b.example.com", "xn--bcher-kva.de": "xn--bcher-kva.de", "_svc.local": "_svc.local", "localhost": "localhost"}
	for in, want := range good {
		if got, err := Pattern(in); err != nil || got != want {
			t.Errorf("Pattern(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "*.", "a..b", ".a", "a.", "a.*.b", "*b.com", "**.b", "a b", "bücher.de", strings.Repeat("a", 254)} {
		if got, err := Pattern(in); err == nil {
			t.Errorf("Pattern(%q) = %q, want an error", in, got)
		}
	}
}

func TestNameMatches(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"a.example.com", "a.example.com", true},
		{"a.example.com", "b.example.com", false},
		{"a.example.com", "xa.example.com", false},
		{"*.b.example.com", "x.b.example.com", true},
		{"*.b.example.com", "x.y.b.example.com", true},
		{"*.b.example.com", "b.example.com", false},
		{"*.b.example.com", "xb.example.com", false},
		{"*.b.example.com", ".b.example.com", false},
		{"*.b.example.com", "", false},
	}
	for _, c := range cases {
		if got := NameMatches(c.pattern, []byte(c.name)); got != c.want {
			t.Errorf("NameMatches(%q, %q) = %v", c.pattern, c.name, got)
		}
	}
}

func TestMatch(t *testing.T) {
	lan := netip.MustParsePrefix("10.0.0.0/8")
	client := netip.MustParseAddr("10.1.2.3")
	outside := netip.MustParseAddr("192.0.2.1")
	sni := Rule{SNI: []string{"a.example.com", "*.b.example.com"}}
	h2 := Rule{SNI: []string{"a.example.com"}, ALPN: []string{"h2"}}
	ssh := Rule{Protocol: SSH}
	none := Rule{Protocol: None}
	fromLAN := Rule{Source: []netip.Prefix{lan}}
	tlsFacts := func(name string, final bool) Facts {
		return Facts{Source: client, Proto: TLS, Hello: HelloOK, Name: []byte(name), Final: final}
	}
	cases := []struct {
		name string
		r    Rule
		f    Facts
		want Verdict
	}{
		{"sni exact", sni, tlsFacts("a.example.com", false), Yes},
		{"sni wildcard", sni, tlsFacts("z.b.example.com", false), Yes},
		{"sni other", sni, tlsFacts("c.example.com", false), No},
		{"sni none sent", sni, tlsFacts("", false), No},
		{"sni hello pending", sni, Facts{Source: client, Proto: TLS}, Wait},
		{"sni hello pending final", sni, Facts{Source: client, Proto: TLS, Final: true}, No},
		{"sni hello failed", sni, Facts{Source: client, Proto: TLS, Hello: HelloFailed}, No},
		{"sni protocol unknown", sni, Facts{Source: client, Proto: Unknown}, Wait},
		{"sni not tls", sni, Facts{Source: client, Proto: HTTP}, No},
		{"alpn without list", h2, tlsFacts("a.example.com", false), No},
		{"ssh", ssh, Facts{Source: client, Proto: SSH}, Yes},
		{"ssh unknown", ssh, Facts{Source: client, Proto: Unknown}, Wait},
		{"ssh other", ssh, Facts{Source: client, Proto: Other}, No},
		{"none", none, Facts{Source: client, Proto: None, Final: true}, Yes},
		{"none while waiting", none, Facts{Source: client, Proto: Unknown}, Wait},
		{"source in", fromLAN, Facts{Source: client, Proto: Unknown}, Yes},
		{"source mapped", fromLAN, Facts{Source: netip.AddrFrom16(client.As16()), Proto: Unknown}, Yes},
		{"source out", fromLAN, Facts{Source: outside}, No},
		{"source out beats protocol", Rule{Source: []netip.Prefix{lan}, Protocol: SSH}, Facts{Source: outside, Proto: Unknown}, No},
		{"catch-all", Rule{}, Facts{Source: outside, Proto: Unknown}, Yes},
	}
	for _, c := range cases {
		if got := c.r.Match(&c.f); got != c.want {
			t.Errorf("%s: Match = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestShadows(t *testing.T) {
	p := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	cases := []struct {
		name  string
		first Rule
		later Rule
		want  bool
	}{
		{"catch-all shadows all", Rule{}, Rule{Protocol: SSH}, true},
		{"tls shadows sni", Rule{Protocol: TLS}, Rule{SNI: []string{"a.x"}}, true},
		{"ssh does not shadow sni", Rule{Protocol: SSH}, Rule{SNI: []string{"a.x"}}, false},
		{"wildcard shadows name", Rule{SNI: []string{"*.x"}}, Rule{SNI: []string{"a.x", "b.c.x"}}, true},
		{"wildcard shadows deeper wildcard", Rule{SNI: []string{"*.x"}}, Rule{SNI: []string{"*.a.x"}}, true},
		{"wildcard not its parent", Rule{SNI: []string{"*.x"}}, Rule{SNI: []string{"x"}}, false},
		{"one name of two left", Rule{SNI: []string{"a.x"}}, Rule{SNI: []string{"a.x", "b.x"}}, false},
		{"sni does not shadow tls", Rule{SNI: []string{"a.x"}}, Rule{Protocol: TLS}, false},
		{"alpn subset", Rule{ALPN: []string{"h2", "http/1.1"}}, Rule{SNI: []string{"a.x"}, ALPN: []string{"h2"}}, true},
		{"alpn not subset", Rule{ALPN: []string{"h2"}}, Rule{ALPN: []string{"h2", "http/1.1"}}, false},
		{"alpn vs none", Rule{ALPN: []string{"h2"}}, Rule{SNI: []string{"a.x"}}, false},
		{"source wider", Rule{Source: p("10.0.0.0/8")}, Rule{Source: p("10.1.0.0/16"), Protocol: SSH}, true},
		{"source narrower", Rule{Source: p("10.1.0.0/16")}, Rule{Source: p("10.0.0.0/8")}, false},
		{"source vs any", Rule{Source: p("10.0.0.0/8")}, Rule{Protocol: SSH}, false},
		{"source and sni", Rule{Source: p("10.0.0.0/8"), SNI: []string{"*.x"}}, Rule{Source: p("10.2.0.0/16"), SNI: []string{"a.x"}}, true},
	}
	for _, c := range cases {
		if got := c.first.Shadows(&c.later); got != c.want {
			t.Errorf("%s: Shadows = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	r := Rule{SNI: []string{"a.example.com", "*.b.example.com"}, ALPN: []string{"h2"}, Source: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	f := Facts{Source: netip.MustParseAddr("10.0.0.1"), Proto: TLS, Hello: HelloOK, Name: []byte("z.b.example.com"), Final: true}
	name := []byte("GET / HTTP/1.1")
	if n := testing.AllocsPerRun(100, func() {
		r.Match(&f)
		Detect(name, false)
	}); n != 0 {
		t.Fatalf("Match and Detect allocate %.1f times a call", n)
	}
}

func FuzzDetect(f *testing.F) {
	for _, s := range []string{"", "\x16\x03\x01", "SSH-2.0-x", "GET / HTTP/1.1", "PRI * HTTP/2.0", "\x80"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		whole := Detect(p, true)
		if whole == Unknown {
			t.Fatalf("final Detect(%q) is Unknown", p)
		}
		for i := range min(len(p), DetectLen+1) {
			if got := Detect(p[:i], false); got != Unknown && got != whole {
				t.Fatalf("prefix %q of %q gives %s, the whole %s", p[:i], p, got, whole)
			}
		}
	})
}

func TestRuleString(t *testing.T) {
	for _, c := range []struct {
		r    Rule
		want string
	}{
		{Rule{}, "any"},
		{Rule{SNI: []string{"a.x", "*.b.x"}, ALPN: []string{"h2", "a b", "x\x00"}}, `sni a.x, *.b.x; alpn h2, "a b", "x\x00"`},
		{Rule{Protocol: SSH, Source: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "protocol ssh; source 10.0.0.0/8"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("String() = %s, want %s", got, c.want)
		}
	}
}
