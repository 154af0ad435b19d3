package health

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Kind names an active check.
type Kind string

const (
	TCP    Kind = "tcp"    // a connect succeeds within Timeout, then Steps pass
	HTTP   Kind = "http"   // GET Path answers ExpectStatus
	Expect Kind = "expect" // Send, then Expect appears in what comes back
	// NoCheck runs no regular check: the agent alone, or passive
	// observation alone, decides. Rise and Fall are unused.
	NoCheck Kind = "none"
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

	// Steps is a tcp check's conversation once connected, run in order;
	// every step must pass. Empty: the connect alone decides. The expect
	// kind is the shorthand for one send and one expect step.
	Steps []Step

	// Agent, when set, runs HAProxy's agent-check beside the regular
	// check (or alone, with NoCheck): the server is UP only while both
	// agree.
	Agent *AgentSpec
	// Observe, when set, is HAProxy's observe layer4: connect failures on
	// live traffic act through OnError. Unset, with a regular check, fall
	// consecutive failures take a server DOWN (the behaviour before it).
	Observe *ObserveSpec
}

// OnError is what ErrorLimit consecutive live-traffic errors do, as
// HAProxy's on-error. Every mode also runs the next check soon
// (fastinter).
type OnError string

const (
	FastInter   OnError = "fastinter"    // only check sooner
	FailCheck   OnError = "fail-check"   // count as one failed check
	SuddenDeath OnError = "sudden-death" // one failed check from DOWN
	MarkDown    OnError = "mark-down"    // DOWN at once
)

// ObserveSpec is passive health on live traffic.
type ObserveSpec struct {
	ErrorLimit int // consecutive connect failures that act
	OnError    OnError
	// Downtime is how long a server taken DOWN by errors stays out when
	// there is no regular check to bring it back (nginx's fail_timeout);
	// with one, its checks decide.
	Downtime time.Duration
}

// Action is what a step does.
type Action uint8

const (
	SendBytes    Action = iota + 1 // write Data
	ExpectBytes                    // Data must appear in the answer
	ExpectRegexp                   // Regexp must match the answer
)

// Step is one step of a tcp check, HAProxy's tcp-check send,
// send-binary and expect string|rstring|binary. An expect looks at the
// answer: what the server sent since the last send step (bytes left
// from an earlier question answer nothing asked now). It reads until it
// matches, the server closes, MaxRead bytes came, or the step's time is
// up; a regexp is tried on the whole answer each time more arrives.
type Step struct {
	Action Action
	Data   []byte         // SendBytes: the bytes written; ExpectBytes: the bytes wanted
	Regexp *regexp.Regexp // ExpectRegexp
	Hex    bool           // Data was configured in hex: failure reasons show bytes in hex
	// Timeout bounds the step, at most the check's Timeout, which bounds
	// the whole check; 0 = what is left of it.
	Timeout time.Duration
}

// MaxRead caps what a check reads from a server: http status line and
// headers, or the expect response. A check that needs more fails.
const MaxRead = 16 << 10

// minFastInterval keeps the fast interval from hammering a server that
// has a short interval configured.
const minFastInterval = 100 * time.Millisecond

// Validate reports the first problem of s, naming the field.
func (s Spec) Validate() error {
	if err := s.validateExtras(); err != nil {
		return err
	}
	switch s.Kind {
	case TCP, HTTP, Expect:
	case NoCheck:
		if s.Agent == nil && s.Observe == nil {
			return errors.New("health: no check, no agent and no observe: nothing to do")
		}
		return nil
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
	if len(s.Steps) > 0 && s.Kind != TCP {
		return fmt.Errorf("health: %s check: steps run on a tcp check only", s.Kind)
	}
	for i, st := range s.Steps {
		if err := st.validate(s.Timeout); err != nil {
			return fmt.Errorf("health: tcp check: step %d: %w", i+1, err)
		}
	}
	return nil
}

func (st Step) validate(checkTimeout time.Duration) error {
	switch st.Action {
	case SendBytes:
		if len(st.Data) == 0 {
			return errors.New("send is empty")
		}
	case ExpectBytes:
		if len(st.Data) == 0 {
			return errors.New("expect is empty")
		}
		if len(st.Data) > MaxRead {
			return fmt.Errorf("expect is %d bytes, more than the %d read", len(st.Data), MaxRead)
		}
	case ExpectRegexp:
		if st.Regexp == nil {
			return errors.New("expect regexp is missing")
		}
		if st.Regexp.Match(nil) {
			return fmt.Errorf("expect regexp %q matches an empty answer: it would pass before the server said anything", st.Regexp)
		}
	default:
		return fmt.Errorf("unknown action %d", st.Action)
	}
	if st.Timeout < 0 || st.Timeout > checkTimeout {
		return fmt.Errorf("timeout %v out of 0..%v (the check's timeout, which bounds the whole check)", st.Timeout, checkTimeout)
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

// validateExtras checks the agent and observe parts.
func (s Spec) validateExtras() error {
	if a := s.Agent; a != nil {
		if a.Interval <= 0 || a.Timeout <= 0 {
			return fmt.Errorf("health: agent: interval %v and timeout %v must be positive", a.Interval, a.Timeout)
		}
	}
	if o := s.Observe; o != nil {
		if o.ErrorLimit < 1 {
			return fmt.Errorf("health: observe: error limit %d must be at least 1", o.ErrorLimit)
		}
		switch o.OnError {
		case FastInter, FailCheck, SuddenDeath:
			if s.Kind == NoCheck {
				return fmt.Errorf("health: observe: on-error %s acts on a regular check, and there is none", o.OnError)
			}
		case MarkDown:
		default:
			return fmt.Errorf("health: observe: unknown on-error %q", o.OnError)
		}
		if s.Kind == NoCheck && o.Downtime <= 0 {
			return fmt.Errorf("health: observe: without a regular check, downtime %v must be positive (nothing else brings a server back)", o.Downtime)
		}
	}
	return nil
}

// hasCheck says whether a regular check runs.
func (s Spec) hasCheck() bool { return s.Kind != NoCheck }
