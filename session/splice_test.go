package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/testbed"
)

// Long echo streams switch to splice and every byte arrives unchanged,
// both ways; with splice off nothing is spliced and the data is the same.
func TestSpliceIntegrity(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		for _, on := range []bool{true, false} {
			echo := testbed.StartEcho(t)
			cfg := testConfig(eng, echo.Addr())
			cfg.Global.Splice = on
			p, addr := startProxy(t, cfg)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := testbed.IntegrityRun(context.Background(), addr, 32<<20, int64(i)); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("splice %v: %v", on, err)
			}
			// A client may read its EOF before the proxy has seen its last
			// shutdown complete and counted the session's bytes.
			testbed.WaitFor(t, 5*time.Second, func() bool { return p.Stats().CurConns == 0 }, "every session to end")
			st := p.Stats()
			t.Logf("splice %v: %d channels spliced, %d failures, %d MB each way", on, st.Spliced, st.SpliceFailures, st.BytesIn>>20)
			if on && st.Spliced == 0 {
				t.Error("no channel switched to splice on 32 MiB streams")
			}
			if !on && st.Spliced != 0 {
				t.Errorf("splice off, yet %d channels spliced", st.Spliced)
			}
			if st.BytesIn != 8*32<<20 || st.BytesOut != 8*32<<20 {
				t.Errorf("counted %d in, %d out; want %d each", st.BytesIn, st.BytesOut, 8*32<<20)
			}
		}
	})
}

// A spliced stream's FIN is forwarded once the pipe is empty, in either
// direction: the server sends 16 MiB and half-closes first; the client
// reads all of it, then sends 16 MiB the server reads to its end.
func TestSpliceHalfClose(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		payload := make([]byte, 16<<20)
		rand.Read(payload)
		srv := testbed.StartServerClosesFirst(t, payload)
		p, addr := startProxy(t, testConfig(eng, srv.Addr()))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tr, err := testbed.ReceiveThenSend(ctx, addr, 16<<20, 7)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Received != int64(len(payload)) || tr.ReceivedSHA256 != testbed.SHA256Hex(payload) {
			t.Errorf("client got %d bytes (sha %s), want the %d sent", tr.Received, tr.ReceivedSHA256, len(payload))
		}
		res, err := srv.Results(1, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil || res[0].Bytes != tr.Sent || res[0].SHA256 != tr.SentSHA256 {
			t.Errorf("server got %d bytes (%v), want the %d the client sent", res[0].Bytes, res[0].Err, tr.Sent)
		}
		// The download always fills whole buffers; the upload's random
		// chunks may not under -race on a loaded machine, and then go by
		// buffers, which the data checks above cover as well.
		if st := p.Stats(); st.Spliced == 0 {
			t.Errorf("no channel spliced; want at least the 16 MiB download")
		} else if st.Spliced < 2 {
			t.Logf("only %d channel spliced: the upload stayed on buffers", st.Spliced)
		}
	})
}

// A spliced stream whose reader stops is held by the pipe and the socket
// buffers, not by the proxy's memory, and a timeout still ends it: a
// client that stops reading is not a session that lives forever.
func TestSpliceSlowReaderTimesOut(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		payload := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB
		srv := testbed.StartServerClosesFirst(t, payload)
		cfg := testConfig(eng, srv.Addr())
		cfg.Frontends[0].TimeoutClient = 500 * time.Millisecond
		cfg.Backends[0].TimeoutServer = 500 * time.Millisecond
		p, addr := startProxy(t, cfg)
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Read enough to get the stream spliced, then stop reading.
		if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		// Which side's timeout fires depends on which moved a byte last.
		testbed.WaitFor(t, 5*time.Second, func() bool {
			st := p.Stats()
			return st.Ended[session.ReasonClientTimeout]+st.Ended[session.ReasonServerTimeout] == 1
		}, "the session of a client that stopped reading to time out")
		if st := p.Stats(); st.Spliced == 0 {
			t.Error("the stream was never spliced")
		}
	})
}

// Spliced sessions, ended cleanly or by a client's RST mid-stream, leave
// no fd (pipes included) and no session behind.
func TestSplicedSessionsLeakNothing(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		p, addr := startProxy(t, testConfig(eng, echo.Addr()))
		before := openFds(t)
		var wg sync.WaitGroup
		chunk := bytes.Repeat([]byte("spliced!"), 8<<10) // 64 KiB
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr.String())
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				go io.Copy(io.Discard, c)
				for range 64 { // 4 MiB: well past the switch to splice
					if _, err := c.Write(chunk); err != nil {
						t.Error(err)
						return
					}
				}
				if i%2 == 0 {
					c.(*net.TCPConn).SetLinger(0) // RST with the pipe likely not empty
				}
			}()
		}
		wg.Wait()
		testbed.WaitFor(t, 5*time.Second, func() bool { return p.Stats().CurConns == 0 }, "every session to end")
		if st := p.Stats(); st.Spliced == 0 || st.Late != 0 {
			t.Errorf("%d directions spliced, %d late completions; want some and none", st.Spliced, st.Late)
		}
		testbed.WaitFor(t, 2*time.Second, func() bool { return openFds(t) <= before+2 }, "fds (pipes too) to return to their level")
	})
}
