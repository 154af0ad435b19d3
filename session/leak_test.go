package session_test

import (
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"ringproxy/session/testbed"
)

func openFds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Thousands of short sessions, clean and aborted, leave no fd, no session
// slot and no global count behind.
func TestShortSessionsLeakNothing(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		p, addr := startProxy(t, testConfig(eng, echo.Addr()))
		before := openFds(t)
		const clients, each = 8, 250
		var wg sync.WaitGroup
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := make([]byte, 64)
				for j := 0; j < each; j++ {
					c, err := net.Dial("tcp", addr.String())
					if err != nil {
						t.Error(err)
						return
					}
					c.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err := c.Write(b); err != nil {
						t.Error(err)
					}
					if _, err := io.ReadFull(c, b); err != nil {
						t.Error(err)
					}
					if j%3 == 0 {
						// Abort: RST instead of FIN.
						c.(*net.TCPConn).SetLinger(0)
					}
					c.Close()
				}
			}()
		}
		wg.Wait()
		testbed.WaitFor(t, 5*time.Second, func() bool { return p.Stats().CurConns == 0 }, "every session to end")
		st := p.Stats()
		ended := uint64(0)
		for _, n := range st.Ended {
			ended += n
		}
		if st.Accepted != clients*each || ended != st.Accepted {
			t.Fatalf("accepted %d, ended %d; want %d both (%+v)", st.Accepted, ended, clients*each, st.Counters)
		}
		if st.Late != 0 {
			t.Errorf("%d late completions: a slot was released before its last completion", st.Late)
		}
		// Closes are asynchronous: give the rings a moment to run them.
		testbed.WaitFor(t, 2*time.Second, func() bool { return openFds(t) <= before+2 }, "fds to return to their level before the test")
	})
}
