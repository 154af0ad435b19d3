package health

import (
	"strings"
	"testing"
	"time"
)

// step is one input to a tracker: an active check result ('+' / '-') or a
// passive one ('P' ok, 'p' failure).
func apply(t *tracker, c byte) bool {
	switch c {
	case '+':
		return t.record(true)
	case '-':
		return t.record(false)
	case 'P':
		return t.observe(true)
	case 'p':
		return t.observe(false)
	}
	panic("bad step " + string(c))
}

func TestTracker(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rise, fall int
		steps      string
		// per step: the state after it ('U' / 'D'), upper case when it changed
		// ('U','D') and lower case when not ('u','d').
		want string
		// whether the last step leaves the server in transition (fast interval)
		fast bool
	}{
		{"starts up, successes keep it up", 2, 3, "+++", "uuu", false},
		{"fall failures go down", 2, 3, "---", "uuD", false},
		{"fall 1 goes down at once", 2, 1, "-", "D", false},
		{"a success resets the failure streak", 2, 3, "--+--", "uuuuu", true},
		{"rise successes come back up", 2, 3, "---++", "uuDdU", false},
		{"a failure resets the success streak", 3, 1, "-++-+++", "DdddddU", false},
		{"failures while down stay down", 2, 2, "-----", "uDddd", false},
		{"successes past rise stay up", 1, 1, "-+++", "DUuu", false},
		{"in transition after one failure", 2, 3, "-", "u", true},
		{"in transition after one success when down", 3, 1, "-+", "Dd", true},
		{"down and steady is not in transition", 2, 1, "--", "Dd", false},

		{"fall passive failures go down", 2, 3, "ppp", "uuD", false},
		{"a passive success resets the passive streak", 2, 3, "ppPpp", "uuuuu", true},
		{"passive success leaves active failures alone", 2, 3, "--P-", "uuuD", false},
		{"active success leaves passive failures alone", 2, 3, "pp+p", "uuuD", false},
		{"active and passive streaks are separate", 2, 3, "--pp", "uuuu", true},
		{"passive failures are in transition", 2, 3, "p", "u", true},
		{"passive success ends the transition", 2, 3, "pP", "uu", false},
		{"passive never brings up", 2, 1, "-PPPPP", "Dddddd", false},
		{"passive failures while down are ignored", 2, 1, "-ppp++", "DddddU", false},
		{"passive down needs rise full checks", 2, 2, "+pp+-++", "uuDdddU", false},
		{"passive streak restarts after coming up", 1, 2, "pp+p", "uDUu", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.steps) != len(tc.want) {
				t.Fatalf("bad case: %d steps, %d wants", len(tc.steps), len(tc.want))
			}
			tr := newTracker(tc.rise, tc.fall, true)
			var got strings.Builder
			for i := range len(tc.steps) {
				changed := apply(&tr, tc.steps[i])
				c := map[bool]byte{true: 'u', false: 'd'}[tr.up]
				if changed {
					c -= 'a' - 'A'
				}
				got.WriteByte(c)
			}
			if got.String() != tc.want {
				t.Errorf("steps %s (rise %d fall %d): got %s, want %s", tc.steps, tc.rise, tc.fall, got.String(), tc.want)
			}
			if tr.transitioning() != tc.fast {
				t.Errorf("steps %s: transitioning %v, want %v (%+v)", tc.steps, tr.transitioning(), tc.fast, tr)
			}
		})
	}
}

func TestTrackerCounts(t *testing.T) {
	tr := newTracker(2, 3, true)
	for range 5 {
		tr.record(true)
	}
	if tr.succ != 5 || tr.fail != 0 {
		t.Errorf("after 5 successes: succ %d fail %d, want 5 0", tr.succ, tr.fail)
	}
	tr.record(false)
	if tr.succ != 0 || tr.fail != 1 {
		t.Errorf("after a failure: succ %d fail %d, want 0 1", tr.succ, tr.fail)
	}
	// setPassive takes the data path's streak as counted, not one at a time.
	if tr.setPassive(2) || !tr.up || tr.passive != 2 {
		t.Errorf("passive streak 2 of fall 3: %+v", tr)
	}
	if !tr.setPassive(7) || tr.up || tr.passive != 0 || tr.succ != 0 {
		t.Errorf("passive streak 7 of fall 3: want DOWN with streaks cleared, got %+v", tr)
	}
}

func TestFastInterval(t *testing.T) {
	for _, tc := range []struct{ interval, want time.Duration }{
		{2 * time.Second, 500 * time.Millisecond},
		{time.Hour, 15 * time.Minute},
		{400 * time.Millisecond, 100 * time.Millisecond},
		{200 * time.Millisecond, 100 * time.Millisecond}, // at least 100ms
		{50 * time.Millisecond, 50 * time.Millisecond},   // never slower than interval
	} {
		if got := (Spec{Interval: tc.interval}).fastInterval(); got != tc.want {
			t.Errorf("interval %v: fast interval %v, want %v", tc.interval, got, tc.want)
		}
	}
}

func TestJitter(t *testing.T) {
	const d = time.Second
	lo, hi := d, d
	for range 10000 {
		j := jitter(d)
		lo, hi = min(lo, j), max(hi, j)
	}
	if lo < 900*time.Millisecond || hi > 1100*time.Millisecond {
		t.Errorf("jitter(1s) in [%v, %v], want within ±10%%", lo, hi)
	}
	if hi-lo < 150*time.Millisecond {
		t.Errorf("jitter(1s) in [%v, %v]: barely spread", lo, hi)
	}
	if jitter(1) != 1 {
		t.Errorf("jitter(1ns) = %v", jitter(1))
	}
}

func TestValidate(t *testing.T) {
	ok := Spec{Kind: TCP, Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 3}
	httpOK := ok
	httpOK.Kind, httpOK.Path, httpOK.ExpectStatus = HTTP, "/healthz", 200
	expOK := ok
	expOK.Kind, expOK.Send, expOK.Expect = Expect, []byte("PING\r\n"), []byte("+PONG")
	for _, s := range []Spec{ok, httpOK, expOK} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", s.Kind, err)
		}
	}
	with := func(s Spec, f func(*Spec)) Spec { f(&s); return s }
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{with(ok, func(s *Spec) { s.Kind = "" }), "check kind is empty"},
		{with(ok, func(s *Spec) { s.Kind = "udp" }), `unknown check kind "udp"`},
		{with(ok, func(s *Spec) { s.Interval = 0 }), "tcp check: interval 0s must be positive"},
		{with(ok, func(s *Spec) { s.Timeout = -1 }), "timeout -1ns must be positive"},
		{with(ok, func(s *Spec) { s.Rise = 0 }), "rise 0 must be at least 1"},
		{with(ok, func(s *Spec) { s.Fall = 0 }), "fall 0 must be at least 1"},
		{with(httpOK, func(s *Spec) { s.Path = "" }), "http check: path is empty"},
		{with(httpOK, func(s *Spec) { s.Path = "healthz" }), "must start with /"},
		{with(httpOK, func(s *Spec) { s.Path = "/a b" }), "must start with /"},
		{with(httpOK, func(s *Spec) { s.Host = "x\r\nEvil: 1" }), "host"},
		{with(httpOK, func(s *Spec) { s.ExpectStatus = 0 }), "expect status 0 out of 100..599"},
		{with(expOK, func(s *Spec) { s.Send = nil }), "expect check: send is empty"},
		{with(expOK, func(s *Spec) { s.Expect = nil }), "expect check: expect is empty"},
		{with(expOK, func(s *Spec) { s.Expect = make([]byte, MaxRead+1) }), "more than the"},
	} {
		err := tc.spec.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v): %v, want %q", tc.spec, err, tc.want)
		}
		if _, err := Start(tc.spec, nil, nil); err == nil {
			t.Errorf("Start(%+v) accepted a bad spec", tc.spec)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for line, want := range map[string]int{
		"HTTP/1.1 200 OK\r":      200,
		"HTTP/1.0 503":           503,
		"HTTP/1.1 404 Not Found": 404,
		"HTTP/1.1 200OK":         0,
		"HTTP/2 200 OK":          0,
		"HTTP/1.1 2x0 OK":        0,
		"HTTP/1.1 099 Low":       0,
		"SSH-2.0-OpenSSH_9.6":    0,
		"":                       0,
	} {
		if got := parseStatus([]byte(line)); got != want {
			t.Errorf("parseStatus(%q) = %d, want %d", line, got, want)
		}
	}
}
