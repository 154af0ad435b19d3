package proxyproto

import (
	"bytes"
	"errors"
	"testing"
)

const payload = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

func reasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func TestParseValid(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, tail := range []string{"", payload, "\r\n", "PROXY TCP4 9.9.9.9 9.9.9.9 9 9\r\n"} {
				b := []byte(tc.in + tail)
				orig := bytes.Clone(b)
				h, n, err := Parse(b)
				if err != nil {
					t.Fatalf("tail %q: Parse: %v", tail, err)
				}
				if n != len(tc.in) {
					t.Fatalf("tail %q: n = %d, want %d", tail, n, len(tc.in))
				}
				if h != tc.want {
					t.Fatalf("tail %q: header = %+v, want %+v", tail, h, tc.want)
				}
				if !bytes.Equal(b, orig) {
					t.Fatal("Parse modified its input")
				}
				if string(b[n:]) != tail {
					t.Fatalf("payload = %q, want %q", b[n:], tail)
				}
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.in + payload)
			h, n, err := Parse(b)
			if got := reasonOf(err); got != tc.reason {
				t.Fatalf("Parse(%q) = %+v, %d, %v; want reason %q", tc.in, h, n, err, tc.reason)
			}
			if n != 0 || h != (Header{}) {
				t.Fatalf("failed Parse returned n=%d header=%+v", n, h)
			}
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
		})
	}
}

// Every proper prefix of a valid header is incomplete, whatever its length.
func TestParseIncompletePrefixes(t *testing.T) {
	for _, tc := range validCases {
		for k := 0; k < len(tc.in); k++ {
			h, n, err := Parse([]byte(tc.in[:k]))
			if err != ErrIncomplete || n != 0 || h != (Header{}) {
				t.Fatalf("%s: Parse(prefix %d of %d = %q) = %+v, %d, %v; want ErrIncomplete",
					tc.name, k, len(tc.in), tc.in[:k], h, n, err)
			}
		}
	}
}

// Every prefix of an invalid input is either incomplete or rejected for the
// same reason: a verdict never changes as bytes arrive.
func TestParseInvalidPrefixes(t *testing.T) {
	for _, tc := range invalidCases {
		b := []byte(tc.in + payload)
		for k := 0; k <= len(b); k++ {
			_, _, err := Parse(b[:k])
			if err != ErrIncomplete && reasonOf(err) != tc.reason {
				t.Fatalf("%s: Parse(prefix %d = %q) = %v; want ErrIncomplete or %q",
					tc.name, k, b[:k], err, tc.reason)
			}
		}
	}
}

// "not-proxy" is decided on the first byte that rules out both signatures.
func TestParseNotProxyEarly(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // reason, or "" for ErrIncomplete
	}{
		{"", ""},
		{"G", ReasonNotProxy},
		{"GET / HTTP/1.1", ReasonNotProxy},
		{"P", ""},
		{"PR", ""},
		{"PROX", ""},
		{"PROXY", ""},
		{"PROXY ", ""},
		{"PROXZ", ReasonNotProxy},
		{"PX", ReasonNotProxy},
		{"PROXY\r", ReasonNotProxy},
		{"\r", ""},
		{"\r\n\r\n\x00\r\nQUIT", ""},
		{"\r\n\r\n\x00\r\nQUIT\n", ""},
		{"\r\r", ReasonNotProxy},
		{"\r\n\r\n\x01", ReasonNotProxy},
		{"\r\n\r\n\x00\r\nQUIX", ReasonNotProxy},
	} {
		_, _, err := Parse([]byte(tc.in))
		if tc.want == "" && err != ErrIncomplete || tc.want != "" && reasonOf(err) != tc.want {
			t.Errorf("Parse(%q) = %v; want %q (empty: incomplete)", tc.in, err, tc.want)
		}
	}
	for c := 0; c < 256; c++ {
		_, _, err := Parse([]byte{byte(c)})
		if c == 'P' || c == '\r' {
			if err != ErrIncomplete {
				t.Errorf("Parse(%q) = %v; want ErrIncomplete", byte(c), err)
			}
		} else if reasonOf(err) != ReasonNotProxy {
			t.Errorf("Parse(%q) = %v; want not-proxy", byte(c), err)
		}
	}
}

// Incomplete is only ever returned below the size limits.
func TestParseLimits(t *testing.T) {
	// A v1 line that is still a valid prefix at 106 bytes is too long at 107.
	line := []byte("PROXY UNKNOWN " + string(bytes.Repeat([]byte("x"), 200)))
	if _, _, err := Parse(line[:MaxV1-1]); err != ErrIncomplete {
		t.Fatalf("106 bytes: %v, want ErrIncomplete", err)
	}
	if _, _, err := Parse(line[:MaxV1]); reasonOf(err) != ReasonTooLong {
		t.Fatalf("107 bytes: %v, want too-long", err)
	}
	// A v2 header of the largest accepted length is incomplete until its last
	// byte arrives.
	full := []byte(v2hdrLen(0x20, 0x00, MaxV2, make([]byte, MaxV2)))
	if len(full) != MaxHeaderLen {
		t.Fatalf("len = %d", len(full))
	}
	if _, _, err := Parse(full[:MaxHeaderLen-1]); err != ErrIncomplete {
		t.Fatalf("MaxHeaderLen-1: %v", err)
	}
	if _, n, err := Parse(full); err != nil || n != MaxHeaderLen {
		t.Fatalf("MaxHeaderLen: %d, %v", n, err)
	}
}

func TestReasons(t *testing.T) {
	known := map[string]bool{}
	for _, r := range Reasons() {
		known[r] = true
	}
	for _, tc := range invalidCases {
		if !known[tc.reason] {
			t.Errorf("%s: reason %q not in Reasons()", tc.name, tc.reason)
		}
	}
	if len(known) != 5 {
		t.Errorf("Reasons() = %v", Reasons())
	}
}

func TestCommandString(t *testing.T) {
	if Local.String() != "LOCAL" || Proxy.String() != "PROXY" || Command(7).String() == "" {
		t.Fatal("Command.String")
	}
}

// Bytes after the signature are judged as they arrive, where cheap.
func TestParseEarlyVerdicts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // reason, or "" for ErrIncomplete
	}{
		{"PROXY U", ""},
		{"PROXY UNKNOWN", ""},
		{"PROXY UNKNOWN ", ""},
		{"PROXY UNKNOWN\r", ""},
		{"PROXY TCP7", ReasonBadV1},
		{"PROXY TCP4 0", ""},
		{"PROXY TCP4 1.2.3.", ""},
		{"PROXY TCP4 1.2.3.4", ""},
		{"PROXY TCP4 256", ReasonBadV1},
		{"PROXY TCP4 01", ReasonBadV1},
		{"PROXY TCP4 1..", ReasonBadV1},
		{"PROXY TCP4 1.2.3.4.", ReasonBadV1},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 6553", ""},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 01", ReasonBadV1},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 65536", ReasonBadV1},
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", ""},
		{"PROXY TCP6 ::ffff:1.2", ""},
		{"PROXY TCP6 ::g", ReasonBadV1},
		{v2Sig + "\x10", ReasonBadV2},
		{v2Sig + "\x23", ReasonBadV2},
		{v2Sig + "\x21", ""},
		{v2Sig + "\x21\x11", ""},
		{v2Sig + "\x21\x14", ReasonBadV2},
		{v2Sig + "\x21\x12", ReasonUnsupportedFamily},
		{v2Sig + "\x20\x12", ""},
		{v2Sig + "\x21\x11\x10", ""},
		{v2Sig + "\x21\x11\x10\x01", ReasonTooLong},
		{v2Sig + "\x21\x11\x00\x0b", ReasonBadV2},
		{v2Sig + "\x21\x11\x00\x0c", ""},
	} {
		_, _, err := Parse([]byte(tc.in))
		if tc.want == "" && err != ErrIncomplete || tc.want != "" && reasonOf(err) != tc.want {
			t.Errorf("Parse(%q) = %v; want %q (empty: incomplete)", tc.in, err, tc.want)
		}
	}
}
