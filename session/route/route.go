// Package route holds the rules that pick a frontend's backend from what
// a client shows before anything is forwarded: its address, the protocol
// its first bytes speak, and for TLS the server name (SNI) and the
// application protocols (ALPN) of its ClientHello.
//
// It decides from facts the session gathers (Facts) and never reads a
// socket or keeps state of its own: matching a rule is a pure function
// that allocates nothing, so the data path may call it on every receive
// of an inspected session. Validation (patterns, shadowed rules) is here
// too, so that `check` and the data path agree on what a rule means.
package route

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"ringproxy/session/clienthello"
)

// Rule is what one route asks of a session: every condition given must
// hold; within a list, any entry. A rule without conditions matches every
// session.
type Rule struct {
	SNI      []string       // server name patterns, lower case: "a.example.com" or "*.example.com"
	ALPN     []string       // protocols, any of which the ClientHello offers
	Protocol Protocol       // Any, or what the first bytes must speak; SNI or ALPN imply TLS
	Source   []netip.Prefix // client addresses (after a PROXY header)
}

// Verdict is a rule's answer on what is known so far.
type Verdict uint8

const (
	No   Verdict = iota // the session cannot match
	Yes                 // it matches
	Wait                // more of the client's bytes are needed to say
)

// HelloState is how far a session's ClientHello has been read.
type HelloState uint8

const (
	HelloPending HelloState = iota // not complete yet
	HelloOK                        // parsed: Hello holds its SNI and ALPN
	HelloFailed                    // not TLS, malformed, truncated or too large
)

// Facts are what a session has shown so far. Final says no more will
// come (the inspection timed out, the client closed, or the bound was
// reached): then nothing waits, and what is not known does not match.
type Facts struct {
	Source netip.Addr
	Proto  Protocol // Unknown while the first bytes do not tell
	Hello  HelloState
	Name   []byte   // the SNI, lower case, when Hello is HelloOK ("" if none sent)
	ALPN   ALPNList // the protocols offered, when Hello is HelloOK
	Final  bool
}

// ALPNList reads the protocols of a parsed ClientHello without copying
// them; the zero value offers none.
type ALPNList struct{ Hello *clienthello.Hello }

func (l ALPNList) len() int {
	if l.Hello == nil {
		return 0
	}
	return l.Hello.Protocols()
}

// Inspects says whether the rule needs the client's first bytes.
func (r *Rule) Inspects() bool { return r.Protocol != Any || r.NeedsHello() }

// NeedsHello says whether the rule needs a parsed ClientHello.
func (r *Rule) NeedsHello() bool { return len(r.SNI) > 0 || len(r.ALPN) > 0 }

// proto is the protocol the rule requires, Any if none.
func (r *Rule) proto() Protocol {
	if r.NeedsHello() {
		return TLS
	}
	return r.Protocol
}

// Match says whether a session with facts f takes this route.
func (r *Rule) Match(f *Facts) Verdict {
	if len(r.Source) > 0 && !containsAddr(r.Source, f.Source) {
		return No
	}
	if p := r.proto(); p != Any {
		switch {
		case f.Proto == Unknown && !f.Final:
			return Wait
		case f.Proto != p:
			return No
		}
	}
	if !r.NeedsHello() {
		return Yes
	}
	switch {
	case f.Hello == HelloPending && !f.Final:
		return Wait
	case f.Hello != HelloOK:
		return No
	}
	if len(r.SNI) > 0 && !r.matchName(f.Name) {
		return No
	}
	if len(r.ALPN) > 0 && !r.matchALPN(f.ALPN) {
		return No
	}
	return Yes
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (r *Rule) matchName(name []byte) bool {
	for _, p := range r.SNI {
		if NameMatches(p, name) {
			return true
		}
	}
	return false
}

func (r *Rule) matchALPN(l ALPNList) bool {
	for i := range l.len() {
		got := l.Hello.Protocol(i)
		for _, want := range r.ALPN {
			if string(got) == want { // compiled to a comparison: no allocation
				return true
			}
		}
	}
	return false
}

// NameMatches says whether a lower-case server name matches a pattern:
// exactly, or for "*.example.com" any name of one or more labels under
// example.com (not example.com itself).
func NameMatches(pattern string, name []byte) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(name) > len(suffix) && string(name[len(name)-len(suffix):]) == suffix
	}
	return string(name) == pattern
}

// Pattern checks a server name pattern and returns it in lower case: a
// DNS name (letters, digits, '-', '_' and dots between non-empty labels,
// at most 253 bytes), optionally led by "*." for a wildcard.
func Pattern(s string) (string, error) {
	p := strings.ToLower(s)
	name := strings.TrimPrefix(p, "*.")
	switch {
	case name == "":
		return "", errors.New("empty server name")
	case len(name) > 253:
		return "", fmt.Errorf("server name %q is longer than 253 bytes", s)
	case strings.Contains(name, "*"):
		return "", fmt.Errorf("server name %q: a wildcard is only allowed as the whole first label (\"*.example.com\")", s)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return "", fmt.Errorf("server name %q has an empty label", s)
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("server name %q: %q is not allowed in a DNS name (use the punycode form of an IDN)", s, c)
			}
		}
	}
	return p, nil
}

// Shadows says whether r matches every session o matches, so that o,
// after r in a frontend's list, can never be taken.
func (r *Rule) Shadows(o *Rule) bool {
	if len(r.Source) > 0 && !prefixesCover(r.Source, o.Source) {
		return false
	}
	if p := r.proto(); p != Any && p != o.proto() {
		return false
	}
	if len(r.SNI) > 0 && !patternsCover(r.SNI, o.SNI) {
		return false
	}
	if len(r.ALPN) > 0 && (len(o.ALPN) == 0 || !subset(o.ALPN, r.ALPN)) {
		return false
	}
	return true
}

// prefixesCover: every address in one of inner is in one of outer.
func prefixesCover(outer, inner []netip.Prefix) bool {
	if len(inner) == 0 {
		return false // inner takes every address
	}
	for _, in := range inner {
		if !slices.ContainsFunc(outer, func(out netip.Prefix) bool {
			return out.Bits() <= in.Bits() && out.Contains(in.Addr())
		}) {
			return false
		}
	}
	return true
}

// patternsCover: every name matching one of inner matches one of outer.
func patternsCover(outer, inner []string) bool {
	if len(inner) == 0 {
		return false // inner takes every name
	}
	for _, in := range inner {
		if !slices.ContainsFunc(outer, func(out string) bool { return patternCovers(out, in) }) {
			return false
		}
	}
	return true
}

func patternCovers(out, in string) bool {
	if out == in {
		return true
	}
	suffix, ok := strings.CutPrefix(out, "*")
	if !ok {
		return false
	}
	// "*.x" covers "a.x", "*.a.x" and deeper, not "x" or "*.x"'s parent.
	inName := strings.TrimPrefix(in, "*")
	return len(inName) > len(suffix) && strings.HasSuffix(inName, suffix)
}

func subset(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}

// String says what the rule matches, as `check` and the stats show it:
// "sni a.example.com, *.b.example.com; alpn h2", "protocol ssh",
// "source 10.0.0.0/8", or "any".
func (r *Rule) String() string {
	var parts []string
	if len(r.SNI) > 0 {
		parts = append(parts, "sni "+strings.Join(r.SNI, ", "))
	}
	if len(r.ALPN) > 0 {
		alpn := make([]string, len(r.ALPN))
		for i, a := range r.ALPN {
			alpn[i] = plainOrQuoted(a)
		}
		parts = append(parts, "alpn "+strings.Join(alpn, ", "))
	}
	if r.Protocol != Any {
		parts = append(parts, "protocol "+r.Protocol.String())
	}
	if len(r.Source) > 0 {
		src := make([]string, len(r.Source))
		for i, p := range r.Source {
			src[i] = p.String()
		}
		parts = append(parts, "source "+strings.Join(src, ", "))
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, "; ")
}

// plainOrQuoted quotes s when it would not read as one item of a list:
// ALPN protocol ids may be any bytes.
func plainOrQuoted(s string) string {
	if q := strconv.Quote(s); q[1:len(q)-1] != s || strings.ContainsAny(s, " ,;\"") {
		return q
	}
	return s
}
