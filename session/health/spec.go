package health

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind names an active check.
type Kind string

const (
	TCP    Kind = "tcp"    // a connect succeeds within Timeout
	HTTP   Kind = "http"   // GET Path answers ExpectStatus
	Expect Kind = "expect" // Send, then Expect appears in what comes back
)

// Spec is one backend's check configuration; every server of the backend
// is checked the same way. Fields of other kinds are ignored.
type Spec struct {
	Kind       Kind
	Interval   time.Duration // between check starts, jittered ±10%
	Timeout    time.Duration // the whole check: connect, send and read
	Rise, Fall int           // consecutive successes to go UP, failures to go DOWN

	Path         string // http: request target, "/healthz"
	Host         string // http: Host header; "" = the server's address
	ExpectStatus int    // http: the only status that passes

	Send   []byte // expect: written once connected
	Expect []byte // expect: must appear in the first MaxRead bytes read
}

// MaxRead caps what a check reads from a server: http status line and
// headers, or the expect response. A check that needs more fails.
const MaxRead = 16 << 10

// minFastInterval keeps the fast interval from hammering a server that
// has a short interval configured.
const minFastInterval = 100 * time.Millisecond

// Validate reports the first problem of s, naming the field.
func (s Spec) Validate() error {
	switch s.Kind {
	case TCP, HTTP, Expect:
	case "":
		return errors.New("health: check kind is empty, want tcp, http or expect")
	default:
		return fmt.Errorf("health: unknown check kind %q, want tcp, http or expect", s.Kind)
	}
	if s.Interval <= 0 {
		return fmt.Errorf("health: %s check: interval %v must be positive", s.Kind, s.Interval)
	}
	if s.Timeout <= 0 {
		return fmt.Errorf("health: %s check: timeout %v must be positive", s.Kind, s.Timeout)
	}
	if s.Rise < 1 {
		return fmt.Errorf("health: %s check: rise %d must be at least 1", s.Kind, s.Rise)
	}
	if s.Fall < 1 {
		return fmt.Errorf("health: %s check: fall %d must be at least 1", s.Kind, s.Fall)
	}
	switch s.Kind {
	case HTTP:
		if s.Path == "" {
			return errors.New("health: http check: path is empty")
		}
		if s.Path[0] != '/' || strings.ContainsFunc(s.Path, notToken) {
			return fmt.Errorf("health: http check: path %q must start with / and hold no spaces or control characters", s.Path)
		}
		if strings.ContainsFunc(s.Host, notToken) {
			return fmt.Errorf("health: http check: host %q holds spaces or control characters", s.Host)
		}
		if s.ExpectStatus < 100 || s.ExpectStatus > 599 {
			return fmt.Errorf("health: http check: expect status %d out of 100..599", s.ExpectStatus)
		}
	case Expect:
		if len(s.Send) == 0 {
			return errors.New("health: expect check: send is empty")
		}
		if len(s.Expect) == 0 {
			return errors.New("health: expect check: expect is empty")
		}
		if len(s.Expect) > MaxRead {
			return fmt.Errorf("health: expect check: expect is %d bytes, more than the %d read", len(s.Expect), MaxRead)
		}
	}
	return nil
}

// notToken reports characters that would break the request line or the
// Host header (and would let a config inject headers).
func notToken(r rune) bool { return r <= ' ' || r == 0x7f }

// fastInterval is the interval while a server is in transition.
func (s Spec) fastInterval() time.Duration {
	return min(max(s.Interval/4, minFastInterval), s.Interval)
}
