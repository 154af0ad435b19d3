package config

import (
	"net/netip"
	"regexp"
	"strings"
	"time"

	"ringproxy/session"
	"ringproxy/session/health"
)

// readCheck reads [backend.check]. Defaults follow HAProxy's: a check
// every 2s, 1s to answer, 2 successes to rise and 3 failures to fall.
func readCheck(t *table) *session.Check {
	c := &session.Check{
		Kind:         t.str("kind", "tcp"),
		Interval:     t.duration("interval", 2*time.Second, true),
		Timeout:      t.duration("timeout", time.Second, true),
		Rise:         t.integer("rise", 2, 1, 100),
		Fall:         t.integer("fall", 3, 1, 100),
		Path:         t.str("path", "/"),
		Host:         t.str("host", ""),
		ExpectStatus: t.integer("expect_status", 200, 100, 599),
		Send:         string(t.escaped("send")),
		Expect:       string(t.escaped("expect")),
		Port:         uint16(t.integer("port", 0, 1, 65535)),
		Address:      readCheckAddress(t, "address"),
	}
	switch c.Kind {
	case "tcp":
	case "http":
		if !strings.HasPrefix(c.Path, "/") {
			t.fail("path", nil, "path %q must start with /", c.Path)
		}
	case "expect":
		if c.Expect == "" && !t.bad["expect"] {
			t.failHere("expect", "kind = \"expect\" needs expect (the bytes the answer must contain)")
		}
	default:
		t.fail("kind", nil, "unknown check kind %q (want tcp, http, expect or agent)", c.Kind)
	}
	if c.Timeout > c.Interval {
		t.fail("timeout", nil, "timeout %s is longer than interval %s", c.Timeout, c.Interval)
	}
	stepsOK := readSteps(t, c)
	if err := session.HealthSpec(c).Validate(); err != nil && !t.failed() && stepsOK {
		t.failHere("kind", "%v", err) // what the checker refuses beyond the rules above
	}
	t.done()
	return c
}

// readSteps reads the check's [[backend.check.step]] list, a tcp check's
// conversation, and refuses what would mix it up with another way of
// checking. It says whether every step was read without a problem.
func readSteps(t *table, c *session.Check) bool {
	tables := t.list("step")
	if len(tables) == 0 {
		return !t.bad["step"]
	}
	switch c.Kind {
	case "http":
		t.bad["step"] = true
		t.pr.add(tables[0].at.key, t.at.child("step").label, nil, "an http check sends its own request: [[backend.check.step]] needs kind = \"tcp\" (the default)")
	case "expect":
		t.fail("kind", nil, "kind = \"expect\" is the shorthand for one send and one expect; with [[backend.check.step]] use kind = \"tcp\" (the default)")
	}
	for _, k := range []string{"send", "expect"} {
		if t.has(k) {
			t.fail(k, nil, "%s on [backend.check] is the shorthand for a one-send, one-expect check: with [[backend.check.step]], make it a step", k)
		}
	}
	ok := true
	for _, st := range tables {
		step, stepOK := readStep(st, c.Timeout)
		c.Steps = append(c.Steps, step)
		ok = ok && stepOK
	}
	return ok
}

// stepActions are the keys of a step, one of which it must have.
var stepActions = []string{"send", "send_hex", "expect", "expect_regex", "expect_hex"}

// readStep reads one [[backend.check.step]]: one action, and the
// timeout bounding it within the check's. It says whether the step was
// read without a problem.
func readStep(t *table, checkTimeout time.Duration) (health.Step, bool) {
	var st health.Step
	var actions []string
	for _, k := range stepActions {
		if t.has(k) {
			actions = append(actions, k)
		}
	}
	switch len(actions) {
	case 0:
		t.failHere("send", "a step needs one of send, send_hex, expect, expect_regex or expect_hex")
	case 1:
		st = readAction(t, actions[0])
	default:
		t.fail(actions[1], nil, "a step does one thing and this one has %s and %s: make them two steps", actions[0], actions[1])
	}
	st.Timeout = t.duration("timeout", 0, true)
	if st.Timeout > checkTimeout {
		t.fail("timeout", nil, "timeout %s is longer than the check's timeout %s, which bounds the whole check", st.Timeout, checkTimeout)
	}
	t.done()
	return st, len(actions) == 1 && !t.failed()
}

// readAction reads a step's action key k.
func readAction(t *table, k string) health.Step {
	switch k {
	case "send", "expect":
		b := t.escaped(k)
		if b == nil && !t.bad[k] {
			t.fail(k, nil, "%s is empty", k)
		}
		if k == "send" {
			return health.Step{Action: health.SendBytes, Data: b}
		}
		return readExpect(t, k, health.Step{Action: health.ExpectBytes, Data: b})
	case "send_hex", "expect_hex":
		b := t.hex(k)
		if k == "send_hex" {
			return health.Step{Action: health.SendBytes, Data: b, Hex: true}
		}
		return readExpect(t, k, health.Step{Action: health.ExpectBytes, Data: b, Hex: true})
	}
	s := t.str(k, "")
	if t.bad[k] {
		return health.Step{Action: health.ExpectRegexp}
	}
	re, err := regexp.Compile(s)
	switch {
	case err != nil:
		t.fail(k, err, "bad regular expression %q: %v", s, err)
	case re.Match(nil):
		t.fail(k, nil, "%q matches an empty answer: it would pass before the server said anything", s)
	}
	return health.Step{Action: health.ExpectRegexp, Regexp: re}
}

// readExpect refuses bytes that could never all be read.
func readExpect(t *table, k string, st health.Step) health.Step {
	if len(st.Data) > health.MaxRead {
		t.fail(k, nil, "%d bytes: more than the %d an expect reads, so it could never match", len(st.Data), health.MaxRead)
	}
	return st
}

// readServerCheck reads a server's own check endpoint, check_port and
// check_address, which only a backend with checks has use for.
func readServerCheck(t *table, s *session.Server, checked bool) {
	s.CheckPort = uint16(t.integer("check_port", 0, 1, 65535))
	s.CheckAddress = readCheckAddress(t, "check_address")
	for _, k := range []string{"check_port", "check_address"} {
		if !checked && t.has(k) && !t.bad[k] {
			t.fail(k, nil, "the backend has no [backend.check], so %s would do nothing", k)
		}
	}
}

// readCheckAddress reads an IP address without a port (the port is a key
// of its own, as HAProxy's addr and port).
func readCheckAddress(t *table, k string) netip.Addr {
	s := t.str(k, "")
	if s == "" {
		if t.has(k) && !t.bad[k] {
			t.fail(k, nil, "empty address: leave %s out to check the server's own", k)
		}
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err == nil {
		return a
	}
	if _, perr := netip.ParseAddrPort(s); perr == nil {
		t.fail(k, nil, "bad address %q: want an IP without a port (set the port with %s)", s, strings.Replace(k, "address", "port", 1))
	} else {
		t.fail(k, err, "bad address %q: want an IP literal such as \"10.0.0.5\" or \"2001:db8::5\"", s)
	}
	return netip.Addr{}
}

// escaped reads a string of check text with its escapes (unescape); nil
// when absent or bad (reported).
func (t *table) escaped(k string) []byte {
	s := t.str(k, "")
	if s == "" {
		return nil
	}
	b, err := unescape(s)
	if err != nil {
		t.fail(k, nil, "bad %s: %v", k, err)
		return nil
	}
	return b
}

// hex reads bytes written in hex (parseHex); nil when absent or bad
// (reported).
func (t *table) hex(k string) []byte {
	s := t.str(k, "")
	if t.bad[k] {
		return nil
	}
	b, err := parseHex(s)
	if err != nil {
		t.fail(k, nil, "bad %s %q: %v", k, s, err)
		return nil
	}
	return b
}
