package clienthello

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"ringproxy/session/testbed"
)

// realHello is the ClientHello Go's own TLS client sends for name and
// protos: over 1,500 bytes with Go's default post-quantum key share.
func realHello(t testing.TB, name string, protos ...string) []byte {
	return testbed.ClientHello(t, name, protos...)
}

func TestParseRealClientHello(t *testing.T) {
	p := realHello(t, "WWW.Example.COM", "h2", "http/1.1")
	if len(p) <= 1500 {
		t.Logf("ClientHello is %d bytes: no longer above one segment", len(p))
	}
	var h Hello
	if err := Parse([][]byte{p}, &h); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if h.ServerName() != "www.example.com" {
		t.Errorf("SNI %q, want www.example.com (lower-cased)", h.ServerName())
	}
	if h.Protocols() != 2 || string(h.Protocol(0)) != "h2" || string(h.Protocol(1)) != "http/1.1" {
		t.Errorf("ALPN: %d protocols, first %q", h.Protocols(), h.Protocol(0))
	}
	if !Looks(p[:1]) || Looks([]byte("GET / HTTP/1.1\r\n")) || Looks([]byte("SSH-2.0-OpenSSH")) {
		t.Error("Looks: wrong on TLS, HTTP or SSH")
	}
}

// A ClientHello cut anywhere, over two buffers or in many, reads the same;
// any strict prefix of it is incomplete, never malformed.
// recorded are ClientHellos real clients sent, captured on loopback:
//
//	openssl s_client -connect 127.0.0.1:P -servername Shop.Example.NET -alpn h2,http/1.1   (OpenSSL 3.0.19)
//	curl -k --http2 https://www.example.org:P/ --resolve www.example.org:P:127.0.0.1       (curl 7.88.1)
var recorded = []struct {
	file, name string
	protos     []string
}{
	{"openssl-3.0.19.hello", "shop.example.net", []string{"h2", "http/1.1"}},
	{"curl-7.88.1.hello", "www.example.org", []string{"h2", "http/1.1"}},
}

func readRecorded(t testing.TB, file string) []byte {
	p, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseRecordedHellos(t *testing.T) {
	for _, r := range recorded {
		p := readRecorded(t, r.file)
		var h Hello
		for cut := 0; cut < len(p); cut++ {
			if err := Parse([][]byte{p[:cut], p[cut:]}, &h); err != nil || h.ServerName() != r.name {
				t.Fatalf("%s cut at %d: %v, SNI %q", r.file, cut, err, h.ServerName())
			}
		}
		var got []string
		for i := range h.Protocols() {
			got = append(got, string(h.Protocol(i)))
		}
		if fmt.Sprint(got) != fmt.Sprint(r.protos) {
			t.Errorf("%s: ALPN %q, want %q", r.file, got, r.protos)
		}
		if Need([][]byte{p[:len(p)-1]}) != len(p) || Need([][]byte{p}) != 0 {
			t.Errorf("%s: Need %d one byte short, %d whole", r.file, Need([][]byte{p[:len(p)-1]}), Need([][]byte{p}))
		}
	}
}

func TestParseAcrossBuffers(t *testing.T) {
	p := realHello(t, "a.example.com", "h2")
	var h Hello
	for cut := 1; cut < len(p); cut++ {
		if err := Parse([][]byte{p[:cut], p[cut:]}, &h); err != nil || h.ServerName() != "a.example.com" {
			t.Fatalf("cut at %d: %v, SNI %q", cut, err, h.ServerName())
		}
		if err := Parse([][]byte{p[:cut]}, &h); err != ErrIncomplete {
			t.Fatalf("the first %d of %d bytes: %v, want ErrIncomplete", cut, len(p), err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var bufs [][]byte
		for rest := p; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(300))
			bufs = append(bufs, rest[:n])
			rest = rest[n:]
		}
		if err := Parse(bufs, &h); err != nil || h.ServerName() != "a.example.com" || string(h.Protocol(0)) != "h2" {
			t.Fatalf("%d buffers: %v, SNI %q", len(bufs), err, h.ServerName())
		}
	}
}

// The same message split over several TLS records parses the same.
func TestParseAcrossRecords(t *testing.T) {
	p := realHello(t, "r.example.com")
	split := testbed.OverRecords(p, 100)
	var h Hello
	if err := Parse([][]byte{split}, &h); err != nil || h.ServerName() != "r.example.com" {
		t.Fatalf("over records of 100 bytes: %v, SNI %q", err, h.ServerName())
	}
}

func TestParseRefuses(t *testing.T) {
	p := realHello(t, "x.example.com")
	big := append([]byte{recordHandshake, 3, 1, 0x40, 0, typeClientHello, 0, 0x50, 0}, make([]byte, 100)...)
	bad := append([]byte(nil), p...)
	bad[recordHeader+1] ^= 0xff // the handshake length
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"http", []byte("GET / HTTP/1.1\r\n\r\n"), ErrNotTLS},
		{"empty record", []byte{recordHandshake, 3, 1, 0, 0}, ErrMalformed},
		{"not a ClientHello", []byte{recordHandshake, 3, 1, 0, 4, 2, 0, 0, 0}, ErrMalformed},
		{"over MaxHello", big, ErrTooLarge},
		{"a length past its end", bad, ErrTooLarge},
		{"nothing", nil, ErrIncomplete},
	} {
		var h Hello
		if err := Parse([][]byte{c.in}, &h); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	p := realHello(t, "z.example.com", "h2")
	bufs := [][]byte{p[:700], p[700:]}
	var h Hello
	if n := testing.AllocsPerRun(100, func() { Parse(bufs, &h) }); n != 0 {
		t.Errorf("Parse allocates %v times", n)
	}
}

// FuzzParse: no input panics, and however the bytes are split the answer
// is the same.
func FuzzParse(f *testing.F) {
	f.Add(realHello(f, "seed.example.com", "h2", "http/1.1"), uint16(300))
	f.Add(realHello(f, "b.example.org"), uint16(1))
	for _, r := range recorded {
		f.Add(readRecorded(f, r.file), uint16(100))
	}
	f.Add([]byte{recordHandshake, 3, 1, 0, 4, 1, 0, 0, 0}, uint16(3))
	f.Add([]byte("GET / HTTP/1.1\r\n"), uint16(2))
	f.Fuzz(func(t *testing.T, p []byte, cut uint16) {
		var whole, split Hello
		e1 := Parse([][]byte{p}, &whole)
		c := int(cut) % (len(p) + 1)
		e2 := Parse([][]byte{p[:c], nil, p[c:]}, &split)
		if e1 != e2 || whole != split {
			t.Fatalf("whole: %v %q; split at %d: %v %q", e1, whole.ServerName(), c, e2, split.ServerName())
		}
		if prefix := [][]byte{p[:c]}; c < Need(prefix) && Parse(prefix, &split) == nil {
			t.Fatalf("%d bytes: Need says %d, but Parse reads a ClientHello", c, Need(prefix))
		}
	})
}

// Need never says more than Parse needs: below it, every prefix is
// incomplete; the whole hello, in one record or in many, needs nothing
// more.
func TestNeedIsALowerBound(t *testing.T) {
	p := realHello(t, "n.example.com", "h2")
	split := testbed.OverRecords(p, 100)
	for _, whole := range [][]byte{p, split} {
		var h Hello
		for cut := 0; cut <= len(whole); cut++ {
			bufs := [][]byte{whole[:cut/2], whole[cut/2 : cut]}
			if need := Need(bufs); cut < need && Parse(bufs, &h) == nil {
				t.Fatalf("%d of %d bytes: Need %d, but Parse reads a ClientHello", cut, len(whole), need)
			}
		}
		// Bytes arriving one at a time, parsed only once Need is reached.
		parses, need := 0, 0
		for cut := 1; cut <= len(whole); cut++ {
			if cut < need {
				continue
			}
			parses++
			if Parse([][]byte{whole[:cut]}, &h) != ErrIncomplete {
				if cut != len(whole) {
					t.Fatalf("parsed at %d of %d bytes", cut, len(whole))
				}
				break
			}
			need = Need([][]byte{whole[:cut]})
		}
		if parses > 2+len(whole)/100 {
			t.Errorf("%d bytes a byte at a time: %d parses, want at most one a record", len(whole), parses)
		}
	}
}
