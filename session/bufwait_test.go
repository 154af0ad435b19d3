package session_test

import (
	"io"
	"net"
	"testing"
	"time"

	"ringproxy/session/testbed"
)

// A pool of 2 buffers is held by a session whose server does not read.
// Idle clients and then an active client find the pool empty. When the
// hog ends and its buffers return, the active client is served although
// idle waiters are ahead of it in the queue (their receives take no
// buffer until they have data).
func TestBufferWaitersResumeWhenPoolRefills(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		release := make(chan struct{})
		srv := testbed.StartFunc(t, func(c *net.TCPConn) {
			var b [1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			if b[0] == 'H' {
				<-release
				c.SetLinger(0)
				c.Close()
				return
			}
			c.Write(b[:])
			io.Copy(c, c)
		})
		cfg := testConfig(eng, srv.Addr())
		cfg.Global.Workers = 1
		cfg.Global.Buffers = 2
		cfg.Global.BufSize = 4 << 10
		cfg.Global.Splice = false // this is about the buffer pool
		p, addr := startProxy(t, cfg)

		hog, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer hog.Close()
		go func() {
			hog.Write([]byte("H"))
			buf := make([]byte, 64<<10)
			for {
				hog.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := hog.Write(buf); err != nil {
					return
				}
			}
		}()
		time.Sleep(500 * time.Millisecond) // the hog's data now fills both buffers

		var idle []net.Conn
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			idle = append(idle, c)
		}
		time.Sleep(200 * time.Millisecond)
		x, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		x.Write([]byte("ping"))
		time.Sleep(200 * time.Millisecond)
		t.Logf("before release: %+v", p.Stats().Counters)
		close(release) // the hog's server resets: the hog session ends, 2 buffers return
		x.SetReadDeadline(time.Now().Add(3 * time.Second))
		b := make([]byte, 4)
		if _, err := io.ReadFull(x, b); err != nil {
			t.Fatalf("active client got no echo with the pool free again: %v (%+v)", err, p.Stats().Counters)
		}
	})
}
