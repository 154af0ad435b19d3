package session_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"ringproxy/session/testbed"
)

// A burst of clients larger than maxaccept arrives in one loop turn: the
// accepts beyond maxaccept wait for the next turns, and all are served.
func TestBurstAboveMaxacceptAllServed(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Global.Workers = 1
		cfg.Global.MaxAccept = 64
		p, addr := startProxy(t, cfg)
		const n = 400
		var wg sync.WaitGroup
		var mu sync.Mutex
		failed := 0
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				c, err := net.Dial("tcp", addr.String())
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				b := []byte("hello")
				c.Write(b)
				if _, err := io.ReadFull(c, b); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		st := p.Stats()
		t.Logf("accepted %d parked %d", st.Accepted, st.Parked)
		if failed > 0 {
			t.Fatalf("%d of %d clients never got their echo (parked %d, sessions started %d)", failed, n, st.Parked, st.Accepted)
		}
	})
}

// After a burst past maxaccept, the listener goes on serving.
func TestListenerServesAfterBurst(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Global.Workers = 1
		cfg.Global.MaxAccept = 2
		_, addr := startProxy(t, cfg)
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c, err := net.Dial("tcp", addr.String()); err == nil {
					time.Sleep(100 * time.Millisecond)
					c.Close()
				}
			}()
		}
		wg.Wait()
		time.Sleep(300 * time.Millisecond)
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write([]byte("x"))
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			t.Fatalf("a lone client, long after the burst: %v", err)
		}
	})
}
