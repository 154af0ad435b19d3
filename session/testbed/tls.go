package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// TLSNamed is a TLS server (Go's crypto/tls) that identifies itself: after
// the handshake it writes Name, a space, the server name the client asked
// for ("-" if none) and "\n", then echoes what it reads. So a test of SNI
// routing reads which backend the proxy chose and that the ClientHello
// reached it whole (the handshake would fail otherwise).
type TLSNamed struct {
	*Server
	Name string
}

// StartTLSNamed starts a TLSNamed backend with a self-signed certificate.
func StartTLSNamed(t testing.TB, name string) *TLSNamed {
	t.Helper()
	n := &TLSNamed{Server: newServer(t), Name: name}
	cfg := &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, NextProtos: []string{"h2", "http/1.1"}}
	n.start(func(c *net.TCPConn) {
		tc := tls.Server(c, cfg)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		sni := tc.ConnectionState().ServerName
		if sni == "" {
			sni = "-"
		}
		if _, err := io.WriteString(tc, n.Name+" "+sni+"\n"); err != nil {
			return
		}
		io.Copy(tc, tc)
		tc.CloseWrite()
	})
	return n
}

var (
	certOnce sync.Once
	cert     tls.Certificate
	certErr  error
)

// selfSigned is one ECDSA certificate for every TLS backend of the test
// binary: clients skip verification.
func selfSigned(t testing.TB) tls.Certificate {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certErr = err
			return
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ringproxy test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"*"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		cert, certErr = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, err
	})
	if certErr != nil {
		t.Fatalf("self-signed certificate: %v", certErr)
	}
	return cert
}

// ClientHello is the first flight Go's TLS client sends for name and
// protos: with Go's default key shares (X25519MLKEM768) it is over 1,500
// bytes, as current browsers' are. It is read from the client over a pipe
// until the record it announces is whole.
func ClientHello(t testing.TB, name string, protos ...string) []byte {
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
	head := make([]byte, 5)
	if _, err := io.ReadFull(s, head); err != nil {
		t.Fatalf("reading a ClientHello: %v", err)
	}
	body := make([]byte, int(head[3])<<8|int(head[4]))
	if _, err := io.ReadFull(s, body); err != nil {
		t.Fatalf("reading a ClientHello: %v", err)
	}
	return append(head, body...)
}

// OverRecords is the handshake message of a one-record ClientHello split
// over TLS records of at most size bytes, as a client may send it.
func OverRecords(hello []byte, size int) []byte {
	var out []byte
	for msg := hello[5:]; len(msg) > 0; {
		n := min(len(msg), size)
		out = append(out, 0x16, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}
