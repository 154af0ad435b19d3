package clienthello

import (
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// realHello is the ClientHello Go's own TLS client sends for name and
// protos: with Go's default key shares (X25519MLKEM768) it is over
// 1,500 bytes, as current browsers' are.
func realHello(t testing.TB, name string, protos ...string) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		tc := tls.Client(c, &tls.Config{ServerName: name, NextProtos: protos, InsecureSkipVerify: true})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		tc.Handshake() // fails once s closes
		c.Close()
	}()
	s.SetDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	var h Hello
	for {
		n, err := s.Read(buf)
		got = append(got, buf[:n]...)
		if perr := Parse([][]byte{got}, &h); perr != ErrIncomplete {
			return got
		}
		if err != nil {
			t.Fatalf("reading the ClientHello: %v after %d bytes", err, len(got))
		}
	}
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
	msg := p[recordHeader:]
	var split []byte
	for len(msg) > 0 {
		n := min(len(msg), 100)
		split = append(split, recordHandshake, 3, 1, byte(n>>8), byte(n))
		split = append(split, msg[:n]...)
		msg = msg[n:]
	}
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
	})
}
