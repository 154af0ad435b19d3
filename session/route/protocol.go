package route

import "fmt"

// Protocol is what a client's first bytes speak, as far as routing asks.
type Protocol uint8

const (
	Any     Protocol = iota // in a Rule: no condition on the protocol
	Unknown                 // in Facts: the bytes so far do not tell yet
	TLS                     // a TLS handshake record
	HTTP                    // an HTTP/1.x request line, or the HTTP/2 preface
	SSH                     // an SSH identification string ("SSH-")
	None                    // nothing arrived before the inspection ended
	Other                   // bytes that are none of the above
)

var protocolNames = [...]string{"", "unknown", "tls", "http", "ssh", "none", "other"}

func (p Protocol) String() string { return protocolNames[p] }

// ParseProtocol reads a rule's protocol: tls, http, ssh or none.
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "tls":
		return TLS, nil
	case "http":
		return HTTP, nil
	case "ssh":
		return SSH, nil
	case "none":
		return None, nil
	}
	return Any, fmt.Errorf("unknown protocol %q (want tls, http, ssh or none)", s)
}

// httpStarts are the request beginnings taken for HTTP: the methods of RFC
// 9110 and PATCH, each with its space, and HTTP/2's connection preface.
var httpStarts = [...]string{"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "CONNECT ", "OPTIONS ", "TRACE ", "PATCH ", "PRI * HTTP/2.0"}

// DetectLen is the most bytes Detect looks at.
const DetectLen = len("PRI * HTTP/2.0")

// Detect says what the first bytes of a stream speak: Unknown while they
// are too few to tell (a prefix of more than one thing), None for no
// bytes once final. It reads at most DetectLen bytes of p.
func Detect(p []byte, final bool) Protocol {
	switch {
	case len(p) == 0 && final:
		return None
	case len(p) == 0:
		return Unknown
	case p[0] == 0x16: // handshake record; major version 3 (SSLv3, TLS 1.x)
		if len(p) < 2 {
			return orOther(Unknown, final)
		}
		if p[1] == 3 {
			return TLS
		}
		return Other
	}
	if v := startsAs(p, "SSH-"); v != Other {
		return orOther(v.as(SSH), final)
	}
	for _, s := range httpStarts {
		if v := startsAs(p, s); v != Other {
			return orOther(v.as(HTTP), final)
		}
	}
	return Other
}

// startsAs compares p with a beginning s: Other if p diverges from it,
// Unknown if p is a shorter prefix of it, Any if p starts with all of it.
func startsAs(p []byte, s string) Protocol {
	n := min(len(p), len(s))
	if string(p[:n]) != s[:n] {
		return Other
	}
	if n < len(s) {
		return Unknown
	}
	return Any
}

// as turns startsAs's full match into the protocol p.
func (v Protocol) as(p Protocol) Protocol {
	if v == Any {
		return p
	}
	return v
}

// orOther: a stream that ended while still Unknown speaks none of them.
func orOther(p Protocol, final bool) Protocol {
	if p == Unknown && final {
		return Other
	}
	return p
}
