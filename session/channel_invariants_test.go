package session

import (
	"fmt"
	"testing"
)

// Every test of the package, the ones over real engines included, runs
// with the channel invariants checked after each completion: a session
// that breaks one panics its worker, naming the invariant.
func init() {
	checkSession = func(s *Session) {
		if s.state == stFree || s.state == stClosing {
			return // a closing session keeps what it had when aborted
		}
		if why := s.req.broken(); why != "" {
			panic(fmt.Sprintf("session %d, request channel: %s: %+v", s.idx, why, s.req))
		}
		if why := s.rep.broken(); why != "" {
			panic(fmt.Sprintf("session %d, response channel: %s: %+v", s.idx, why, s.rep))
		}
	}
}

// broken names the first invariant of ch's groups (session_types.go) that
// does not hold, or returns "".
func (ch *channel) broken() string {
	sp := &ch.splice
	switch {
	case ch.recv == recvArmed && (ch.n >= chanCap || sp.mode == spliceWanted):
		return "a receive left armed with no room (channel full, or a pipe wanted)"
	case ch.recv != recvIdle && ch.fin.read():
		return "a receive in flight or awaited after the FIN"
	case ch.sendArmed && ch.n == 0:
		return "a send in flight with no buffer queued"
	case ch.fin >= finForwarding && (ch.n > 0 || sp.inPipe > 0 || ch.sendArmed):
		return "the FIN forwarded ahead of bytes"
	case sp.mode == spliceOn && (ch.n > 0 || ch.recv != recvIdle || ch.sendArmed):
		return "spliced with a buffer queued, a receive or a send"
	case (sp.waitIn || sp.waitOut) && sp.mode != spliceOn:
		return "a poll in flight while not spliced"
	case sp.waitIn && (sp.inPipe > 0 || ch.fin.read()):
		return "a readability poll with bytes in the pipe, or after the FIN"
	case sp.waitOut && sp.inPipe == 0:
		return "a writability poll with the pipe empty"
	case sp.inPipe > sp.pipeCap:
		return "more bytes in the pipe than it holds"
	case sp.mode != spliceOn && sp.inPipe > 0:
		return "bytes in a pipe while not spliced"
	}
	return ""
}

// broken accepts what the data path does and names each state the
// invariants rule out.
func TestChannelInvariants(t *testing.T) {
	spliced := func(inPipe uint32, waitIn, waitOut bool) splicing {
		return splicing{mode: spliceOn, pipeCap: 1 << 16, inPipe: inPipe, waitIn: waitIn, waitOut: waitOut}
	}
	for _, c := range []struct {
		name string
		ch   channel
		ok   bool
	}{
		{"empty, receive armed", channel{recv: recvArmed}, true},
		{"full, receive stopping", channel{n: chanCap + 1, recv: recvStopping}, true},
		{"waiting for a buffer, a send in flight", channel{n: 1, recv: recvNoBuffer, sendArmed: true}, true},
		{"FIN read, bytes still to send", channel{n: 2, sendArmed: true, fin: finRead}, true},
		{"FIN forwarded", channel{fin: finForwarded}, true},
		{"pipe wanted, receive stopping", channel{n: 1, recv: recvStopping, splice: splicing{mode: spliceWanted}}, true},
		{"spliced, waiting to read", channel{splice: spliced(0, true, false)}, true},
		{"spliced, waiting to write", channel{fin: finRead, splice: spliced(10, false, true)}, true},

		{"full, receive left armed", channel{n: chanCap, recv: recvArmed}, false},
		{"pipe wanted, receive left armed", channel{recv: recvArmed, splice: splicing{mode: spliceWanted}}, false},
		{"receive after the FIN", channel{recv: recvArmed, fin: finRead}, false},
		{"buffer awaited after the FIN", channel{recv: recvNoBuffer, fin: finRead}, false},
		{"send with nothing queued", channel{sendArmed: true}, false},
		{"shutdown ahead of a buffer", channel{n: 1, fin: finForwarding}, false},
		{"shutdown ahead of the pipe", channel{fin: finForwarding, splice: spliced(1, false, false)}, false},
		{"spliced with a buffer", channel{n: 1, splice: spliced(0, false, false)}, false},
		{"spliced with a receive", channel{recv: recvArmed, splice: spliced(0, false, false)}, false},
		{"poll while on buffers", channel{splice: splicing{waitIn: true}}, false},
		{"readability poll, pipe not empty", channel{splice: spliced(1, true, false)}, false},
		{"readability poll after the FIN", channel{fin: finRead, splice: spliced(0, true, false)}, false},
		{"writability poll, pipe empty", channel{splice: spliced(0, false, true)}, false},
		{"pipe overfull", channel{splice: splicing{mode: spliceOn, pipeCap: 1, inPipe: 2}}, false},
		{"pipe bytes while on buffers", channel{splice: splicing{inPipe: 1}}, false},
	} {
		if why := c.ch.broken(); (why == "") != c.ok {
			t.Errorf("%s: broken() = %q, want ok %v", c.name, why, c.ok)
		}
	}
}
