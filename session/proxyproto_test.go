package session_test

import (
	"bufio"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/proxyproto"
	"ringproxy/session/testbed"
)

// headerReporter is a backend that reads a PROXY header, writes back the
// client address it carried, a newline, then echoes the rest.
func headerReporter(t *testing.T) netip.AddrPort {
	srv := testbed.StartFunc(t, func(c *net.TCPConn) {
		r := bufio.NewReader(c)
		head, _ := r.Peek(16)
		var buf []byte
		for n := len(head); ; n++ {
			b, err := r.Peek(n)
			if err != nil {
				return
			}
			if _, used, err := proxyproto.Parse(b); err == nil {
				buf = b[:used]
				break
			} else if err != proxyproto.ErrIncomplete {
				io.WriteString(c, "bad header: "+err.Error()+"\n")
				return
			}
		}
		hdr, used, _ := proxyproto.Parse(buf)
		r.Discard(used)
		io.WriteString(c, hdr.Src.String()+"\n")
		io.Copy(c, r)
		c.CloseWrite()
	})
	return srv.Addr()
}

// proxyConfig starts a proxy with accept_proxy in front of a
// headerReporter, sending it sendProxy headers.
func proxyConfig(t *testing.T, eng, sendProxy string) netip.AddrPort {
	cfg := testConfig(eng, headerReporter(t))
	cfg.Frontends[0].AcceptProxy = true
	cfg.Backends[0].SendProxy = sendProxy
	_, addr := startProxy(t, cfg)
	return addr
}

// roundTrip sends header+payload (the header split in two writes) and
// returns what came back.
func roundTrip(t *testing.T, addr netip.AddrPort, header []byte, payload string) string {
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(header[:3])
	time.Sleep(20 * time.Millisecond)
	c.Write(append(append([]byte{}, header[3:]...), payload...))
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	return string(got)
}

func TestAcceptProxyCarriesClientToSendProxy(t *testing.T) {
	for _, send := range []string{"v1", "v2"} {
		t.Run(send, func(t *testing.T) {
			forEngines(t, func(t *testing.T, eng string) {
				addr := proxyConfig(t, eng, send)
				src := netip.MustParseAddrPort("203.0.113.7:5555")
				dst := netip.MustParseAddrPort("198.51.100.1:80")
				for _, in := range [][]byte{proxyproto.AppendV1(nil, src, dst), proxyproto.AppendV2(nil, src, dst)} {
					got := roundTrip(t, addr, in, "hello through")
					if want := src.String() + "\nhello through"; got != want {
						t.Fatalf("in %q, send_proxy %s: got %q, want %q", in[:8], send, got, want)
					}
				}
				// A client without PROXY in (LOCAL) keeps its own address.
				if got := roundTrip(t, addr, proxyproto.AppendV2Local(nil), "x"); got[:10] != "127.0.0.1:" {
					t.Fatalf("LOCAL header: server saw %q", got)
				}
			})
		})
	}
}

func TestAcceptProxyMissingOrLateHeader(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg := testConfig(eng, testbed.StartEcho(t).Addr())
		cfg.Frontends[0].AcceptProxy = true
		cfg.Frontends[0].TimeoutClient = 400 * time.Millisecond
		p, addr := startProxy(t, cfg)
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, _ := io.Copy(io.Discard, c); n != 0 {
			t.Fatalf("a client without a PROXY header got %d bytes", n)
		}
		c.Close()
		took, err := testbed.DialExpectClose(addr, 3*time.Second)
		if err != nil || took < 300*time.Millisecond || took > 2*time.Second {
			t.Fatalf("silent client closed after %v (%v), want the ~400ms header timeout", took, err)
		}
		testbed.WaitFor(t, time.Second, func() bool {
			st := p.Stats()
			return st.ProxyErrors[session.ProxyNotProxy] == 1 && proxyErrors(st, "timeout") == 1 && st.Ended[session.ReasonBadProxy] == 2
		}, "one not-proxy and one timeout counted")
	})
}

func proxyErrors(st session.Stats, reason string) uint64 {
	for i := range st.ProxyErrors {
		if session.ProxyReason(i).String() == reason {
			return st.ProxyErrors[i]
		}
	}
	return 0
}

// The address in the header is the one the access lists judge.
func TestAcceptProxyAddressDrivesACL(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		cfg := testConfig(eng, headerReporter(t))
		cfg.Frontends[0].AcceptProxy = true
		cfg.Frontends[0].Deny = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
		cfg.Backends[0].SendProxy = "v1"
		p, addr := startProxy(t, cfg)
		dst := netip.MustParseAddrPort("198.51.100.1:80")
		if got := roundTrip(t, addr, proxyproto.AppendV1(nil, netip.MustParseAddrPort("203.0.113.9:1"), dst), "x"); got != "" {
			t.Fatalf("a denied PROXY source got %q", got)
		}
		if got := roundTrip(t, addr, proxyproto.AppendV1(nil, netip.MustParseAddrPort("192.0.2.9:1"), dst), "x"); got != "192.0.2.9:1\nx" {
			t.Fatalf("an allowed PROXY source got %q", got)
		}
		if st := p.Stats(); st.Ended[session.ReasonDenied] != 1 || st.AcceptOutcomes[session.AcceptDenied] != 1 {
			t.Fatalf("denied %d / %d", st.Ended[session.ReasonDenied], st.AcceptOutcomes[session.AcceptDenied])
		}
	})
}

// A header split across two reads, the second bringing far more than a
// buffer of data behind the header's end, is parsed across the buffers
// and every byte after it is forwarded in order.
func TestAcceptProxyHeaderSplitBeforeMuchData(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		addr := proxyConfig(t, eng, "v1")
		src := netip.MustParseAddrPort("10.1.2.3:4321")
		dst := netip.MustParseAddrPort("10.9.9.9:80")
		for _, in := range [][]byte{proxyproto.AppendV1(nil, src, dst), proxyproto.AppendV2(nil, src, dst)} {
			for _, split := range []int{3, 10, len(in) - 1} {
				for _, size := range []int{20 << 10, 100 << 10} {
					payload := make([]byte, size)
					rand.Read(payload)
					c, err := net.Dial("tcp", addr.String())
					if err != nil {
						t.Fatal(err)
					}
					c.Write(in[:split])
					time.Sleep(50 * time.Millisecond) // two reads, not one
					go func() {
						c.Write(append(append([]byte{}, in[split:]...), payload...))
						c.(*net.TCPConn).CloseWrite()
					}()
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					got, err := io.ReadAll(c)
					c.Close()
					if want := src.String() + "\n" + string(payload); string(got) != want {
						t.Fatalf("%q split at %d, %d bytes after: got %d bytes (%q...), %v; want the address line and every byte",
							in[:5], split, size, len(got), got[:min(len(got), 40)], err)
					}
				}
			}
		}
	})
}
