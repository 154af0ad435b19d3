package session_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"ringproxy/ring"
	"ringproxy/session"
	"ringproxy/session/testbed"
)

// BenchmarkForwarding is the forwarding path's regression check: one
// 1 KiB request and its echo through the proxy (one worker) on a kept-alive
// loopback connection per op. The proxy runs in this process, so allocs/op
// counts its allocations too: it must be 0 (TestLoopbackForwardingAllocatesNothing).
func BenchmarkForwarding(b *testing.B) {
	for _, eng := range ring.Engines {
		b.Run(eng, func(b *testing.B) { benchForwarding(b, eng) })
	}
}

func TestLoopbackForwardingAllocatesNothing(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		r := testing.Benchmark(func(b *testing.B) { benchForwarding(b, eng) })
		if r.N == 0 {
			t.Fatal("the benchmark did not run")
		}
		t.Logf("%s: %d round trips, %d ns/op, %d allocs/op", eng, r.N, r.NsPerOp(), r.AllocsPerOp())
		if a := r.AllocsPerOp(); a != 0 {
			t.Errorf("%d allocations per forwarded round trip, want 0", a)
		}
	})
}

func benchForwarding(b *testing.B, eng string) {
	echo := testbed.StartEcho(b)
	cfg := testConfig(eng, echo.Addr())
	cfg.Global.Workers = 1
	p, err := session.New(cfg, quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	defer p.Shutdown(time.Second)
	c, err := net.Dial("tcp", p.Addrs("web")[0].String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg, got := bytes.Repeat([]byte("ringproxy"), 114)[:1024], make([]byte, 1024)
	roundTrip := func() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
	for range 100 { // the session, its buffers and the echo's are set up
		roundTrip()
	}
	b.ReportAllocs()
	b.SetBytes(2 * int64(len(msg)))
	for b.Loop() {
		roundTrip()
	}
	if !bytes.Equal(got, msg) {
		b.Fatal("the echo came back changed")
	}
}
