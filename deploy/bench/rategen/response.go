package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// respState is where a response parser is in the response it reads.
type respState int

const (
	respStatus    respState = iota // reading the status line
	respHeaders                    // reading header lines
	respBody                       // skipping a Content-Length body
	respChunkSize                  // reading a chunk-size line
	respChunkData                  // skipping a chunk and its CRLF
	respTrailer                    // reading trailer lines after the last chunk
	respDone                       // one whole response read
)

// maxLine bounds a status, header or chunk-size line: a longer one is an
// error, not a buffer that grows without end.
const maxLine = 8 << 10

// respParser reads one HTTP/1.1 response from the bytes fed to it, in
// pieces of any size: a status line with a 2xx or 3xx code, headers, and a
// body of Content-Length bytes or chunked. A response that says
// "Connection: close", or has no length, is an error: the schedule needs
// keep-alive.
type respParser struct {
	state   respState
	line    []byte // the line read so far (without its LF)
	left    int64  // body or chunk bytes still to skip (a chunk's counts its CRLF)
	length  int64  // Content-Length, -1 when none was given
	chunked bool
}

func (p *respParser) reset() {
	*p = respParser{line: p.line[:0], length: -1}
}

var (
	errClosing  = errors.New("server closed the connection (Connection: close)")
	errNoLength = errors.New("response without length")
	errExtra    = errors.New("bytes after the response, with no request outstanding")
)

// feed consumes b. It returns done once a whole response has been read;
// bytes after it are an error (one request is in flight at a time).
func (p *respParser) feed(b []byte) (done bool, err error) {
	for len(b) > 0 {
		if p.state == respDone {
			return true, errExtra
		}
		switch p.state {
		case respBody, respChunkData:
			n := min(int64(len(b)), p.left)
			b, p.left = b[n:], p.left-n
			if p.left == 0 {
				p.state = p.afterSkip()
			}
		default:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				if len(p.line)+len(b) > maxLine {
					return false, fmt.Errorf("line longer than %d bytes", maxLine)
				}
				p.line = append(p.line, b...)
				return false, nil
			}
			if len(p.line)+i > maxLine {
				return false, fmt.Errorf("line longer than %d bytes", maxLine)
			}
			p.line = append(p.line, b[:i]...)
			b = b[i+1:]
			err := p.endLine(bytes.TrimSuffix(p.line, []byte("\r")))
			p.line = p.line[:0]
			if err != nil {
				return false, err
			}
		}
	}
	return p.state == respDone, nil
}

// afterSkip is the state once a body or a chunk has been skipped.
func (p *respParser) afterSkip() respState {
	if p.state == respChunkData {
		return respChunkSize
	}
	return respDone
}

// endLine takes one whole line in a line-reading state.
func (p *respParser) endLine(line []byte) error {
	switch p.state {
	case respStatus:
		return p.statusLine(line)
	case respHeaders:
		if len(line) == 0 {
			return p.endHeaders()
		}
		return p.header(line)
	case respChunkSize:
		return p.chunkSize(line)
	case respTrailer:
		if len(line) == 0 {
			p.state = respDone
		}
		return nil
	}
	return fmt.Errorf("parser in state %d reads no lines", p.state)
}

func (p *respParser) statusLine(line []byte) error {
	if !bytes.HasPrefix(line, []byte("HTTP/1.")) || len(line) < 12 || line[8] != ' ' {
		return fmt.Errorf("bad status line %q", line)
	}
	if c := line[9]; c != '2' && c != '3' {
		return fmt.Errorf("status %s", line[9:12])
	}
	p.state = respHeaders
	return nil
}

func (p *respParser) header(line []byte) error {
	k, v, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return fmt.Errorf("bad header line %q", line)
	}
	v = bytes.TrimSpace(v)
	switch {
	case bytes.EqualFold(k, []byte("content-length")):
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad content-length %q", v)
		}
		p.length = n
	case bytes.EqualFold(k, []byte("transfer-encoding")):
		p.chunked = bytes.EqualFold(v, []byte("chunked"))
	case bytes.EqualFold(k, []byte("connection")):
		if bytes.EqualFold(v, []byte("close")) {
			return errClosing
		}
	}
	return nil
}

func (p *respParser) endHeaders() error {
	switch {
	case p.chunked:
		p.state = respChunkSize
	case p.length > 0:
		p.state, p.left = respBody, p.length
	case p.length == 0:
		p.state = respDone
	default:
		return errNoLength
	}
	return nil
}

func (p *respParser) chunkSize(line []byte) error {
	hex, _, _ := bytes.Cut(line, []byte(";"))
	n, err := strconv.ParseInt(string(bytes.TrimSpace(hex)), 16, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return fmt.Errorf("bad chunk size %q", line)
	}
	if n == 0 {
		p.state = respTrailer
		return nil
	}
	p.state, p.left = respChunkData, n+2
	return nil
}
