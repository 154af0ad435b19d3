package main

import (
	"errors"
	"strings"
	"testing"
)

// feedAll feeds s in pieces of the given sizes (cycled) and reports
// whether the parser saw one whole response, and its first error.
func feedAll(s string, sizes ...int) (bool, error) {
	var p respParser
	p.reset()
	b := []byte(s)
	var done bool
	for i := 0; len(b) > 0; i++ {
		n := len(b)
		if len(sizes) > 0 {
			n = min(len(b), max(1, sizes[i%len(sizes)]))
		}
		var err error
		if done, err = p.feed(b[:n]); err != nil {
			return done, err
		}
		b = b[n:]
	}
	return done, nil
}

var respCases = []struct {
	name, resp string
	done       bool
	err        string // a substring of the error; "" for none
}{
	{"content-length", "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\n\r\nhello", true, ""},
	{"empty body", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", true, ""},
	{"redirect", "HTTP/1.1 302 Found\r\nLocation: /x\r\ncontent-length: 2\r\n\r\nok", true, ""},
	{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", true, ""},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n", true, ""},
	{"chunked trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\n\r\n", true, ""},
	{"partial body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", false, ""},
	{"partial headers", "HTTP/1.1 200 OK\r\nContent-Len", false, ""},
	{"not found", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false, "status 404"},
	{"not http", "SSH-2.0-OpenSSH\r\n", false, "bad status line"},
	{"short status", "HTTP/1.1 20\r\n", false, "bad status line"},
	{"closing", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, "Connection: close"},
	{"no length", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", false, "without length"},
	{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", false, "bad content-length"},
	{"bad header", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", false, "bad header line"},
	{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, "bad chunk size"},
	{"extra bytes", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP", true, "bytes after the response"},
	{"long line", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxLine) + "\r\n\r\n", false, "line longer than"},
}

func TestRespParser(t *testing.T) {
	for _, tc := range respCases {
		for _, sizes := range [][]int{nil, {1}, {2, 3}, {7}} {
			done, err := feedAll(tc.resp, sizes...)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("%s, pieces %v: error %v", tc.name, sizes, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("%s, pieces %v: error %v, want one saying %q", tc.name, sizes, err, tc.err)
			case tc.err == "" && done != tc.done:
				t.Errorf("%s, pieces %v: done %v, want %v", tc.name, sizes, done, tc.done)
			}
		}
	}
}

// TestRespParserReset reads two responses in a row on one parser, as a
// keep-alive connection does.
func TestRespParserReset(t *testing.T) {
	var p respParser
	p.reset()
	for i := range 2 {
		done, err := p.feed([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
		if !done || err != nil {
			t.Fatalf("response %d: done %v, error %v", i, done, err)
		}
		p.reset()
		if p.chunked || p.length != -1 || p.state != respStatus {
			t.Fatalf("after reset: %+v", p)
		}
	}
}

// FuzzRespParser: whatever the bytes and however they are split, the
// parser does not panic, and one piece or many reach the same verdict.
func FuzzRespParser(f *testing.F) {
	for _, tc := range respCases {
		f.Add(tc.resp, uint8(1))
		f.Add(tc.resp, uint8(5))
	}
	f.Fuzz(func(t *testing.T, s string, piece uint8) {
		d1, e1 := feedAll(s)
		d2, e2 := feedAll(s, int(piece))
		if (e1 == nil) != (e2 == nil) || (e1 == nil && d1 != d2) {
			t.Fatalf("whole: %v %v; in pieces of %d: %v %v", d1, e1, piece, d2, e2)
		}
		if e1 != nil && errors.Is(e1, errExtra) != errors.Is(e2, errExtra) {
			t.Fatalf("whole: %v; in pieces: %v", e1, e2)
		}
	})
}
