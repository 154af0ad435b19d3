package health

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"ringproxy/session/testbed"
)

func send(s string) Step       { return Step{Action: SendBytes, Data: []byte(s)} }
func sendHex(b ...byte) Step   { return Step{Action: SendBytes, Data: b, Hex: true} }
func expect(s string) Step     { return Step{Action: ExpectBytes, Data: []byte(s)} }
func expectHex(b ...byte) Step { return Step{Action: ExpectBytes, Data: b, Hex: true} }
func expectRe(re string) Step {
	return Step{Action: ExpectRegexp, Regexp: regexp.MustCompile(re)}
}

func within(st Step, d time.Duration) Step { st.Timeout = d; return st }

func stepSpec(steps ...Step) Spec {
	return Spec{Kind: TCP, Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond, Rise: 2, Fall: 2, Steps: steps}
}

// redisRole is the Redis recipe: AUTH, PING, INFO replication wanting
// role:master, the role step bounded more tightly than the check, so a
// replica fails fast.
func redisRole(password string) Spec {
	return stepSpec(
		send("AUTH "+password+"\r\n"), expect("+OK"),
		send("PING\r\n"), expect("+PONG"),
		send("INFO replication\r\n"), within(expect("role:master"), 100*time.Millisecond))
}

// checkResult asserts a check's reason ("" for success) and, when it is a
// timeout, that it came after about timeout, not later.
func checkResult(t *testing.T, spec Spec, addr netip.AddrPort, want string, timeout time.Duration) {
	t.Helper()
	err, took := probeOnce(t, spec, addr)
	if want == "" && err != nil || want != "" && (err == nil || err.Error() != want) {
		t.Errorf("got %v\nwant %q", err, want)
	}
	switch {
	case timeout > 0 && (took < timeout-10*time.Millisecond || took > timeout+200*time.Millisecond):
		t.Errorf("failed after %v, want ~%v", took, timeout)
	case timeout == 0 && took > 200*time.Millisecond:
		t.Errorf("took %v: should not wait for a timeout", took)
	}
}

func TestStepsRedisRole(t *testing.T) {
	t.Parallel()
	r := testbed.StartRedis(t, "r1", "s3cret", true)
	checkResult(t, redisRole("s3cret"), r.Addr(), "", 0)

	r.SetMaster(false) // a replica answers all, but role:slave: the role step's own timeout ends it
	checkResult(t, redisRole("s3cret"), r.Addr(),
		`step 6 expect: timeout after 100ms, got "$581\r\n# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_p"..., want "role:master"`,
		100*time.Millisecond)

	// A wrong password fails at AUTH's answer, after the check's timeout:
	// that step has none of its own.
	checkResult(t, redisRole("wrong"), r.Addr(),
		`step 2 expect: timeout after 300ms, got "-WRONGPASS invalid username-password pair or user is disabled.\r\n", want "+OK"`,
		300*time.Millisecond)
}

// PostgreSQL's liveness by its protocol: an SSLRequest is answered S or
// N, which a regexp on the binary answer accepts either way; a hex expect
// names the bytes in hex.
func TestStepsPostgresSSLRequest(t *testing.T) {
	t.Parallel()
	sslRequest := sendHex(testbed.SSLRequest...)
	sOrN := stepSpec(sslRequest, expectRe("^[SN]"))
	for _, answer := range []byte{'S', 'N'} {
		checkResult(t, sOrN, testbed.StartPostgres(t, answer).Addr(), "", 0)
	}
	pg := testbed.StartPostgres(t, 'E')
	checkResult(t, sOrN, pg.Addr(), `step 2 expect: timeout after 300ms, got "E", want regexp "^[SN]"`, 300*time.Millisecond)
	pg.SetAnswer('N')
	checkResult(t, stepSpec(sslRequest, within(expectHex('S'), 50*time.Millisecond)), pg.Addr(),
		"step 2 expect: timeout after 50ms, got hex 4e, want hex 53", 50*time.Millisecond)
	checkResult(t, stepSpec(sslRequest, expectHex('N')), pg.Addr(), "", 0)
}

// A regexp is tried on raw bytes: bytes that are not UTF-8 are each one
// unknown character, so ASCII patterns still find their bytes among them.
func TestStepsRegexpOnBinary(t *testing.T) {
	t.Parallel()
	srv := serve(t, func(c net.Conn) {
		c.Read(make([]byte, 16))
		c.Write([]byte{0xff, 0x00, 0xfe, 'S', 0x80, '\n', 'O', 'K'})
		silent(c)
	})
	for _, tc := range []struct {
		re, want string
	}{
		{`\x00.S`, ""},
		{`(?s)S.\nOK`, ""},
		{`^\xff`, `step 2 expect: timeout after 50ms, got "\xff\x00\xfeS\x80\nOK", want regexp "^\\xff"`}, // U+00FF is two bytes in UTF-8
		{`^[SN]`, `step 2 expect: timeout after 50ms, got "\xff\x00\xfeS\x80\nOK", want regexp "^[SN]"`},
	} {
		timeout := time.Duration(0)
		if tc.want != "" {
			timeout = 50 * time.Millisecond
		}
		checkResult(t, stepSpec(send("?"), within(expectRe(tc.re), 50*time.Millisecond)), srv.addr, tc.want, timeout)
	}
}

// Steps run in order on one connection; an expect sees the answer since
// the last send, which a next expect sees too; a failure names its step.
func TestStepsSequence(t *testing.T) {
	t.Parallel()
	pipelined := testbed.StartRedis(t, "r", "pw", true)
	checkResult(t, stepSpec(send("AUTH pw\r\nPING\r\nWHO\r\n"), expect("+OK"), expect("+PONG"), expect("+r\r\n")), pipelined.Addr(), "", 0)

	// A banner saying role:master, then INFO answering role:slave: the
	// banner answered nothing asked by INFO, so it must not count.
	banner := serve(t, func(c net.Conn) {
		io.WriteString(c, "hello role:master\r\n")
		reply("role:slave\r\n")(c)
	})
	checkResult(t, stepSpec(expect("hello"), send("INFO\r\n"), within(expect("role:master"), 50*time.Millisecond)), banner.addr,
		`step 3 expect: timeout after 50ms, got "role:slave\r\n", want "role:master"`, 50*time.Millisecond)

	hangsUp := serve(t, func(c net.Conn) { // answers AUTH, hangs up on PING once read (a close with unread bytes would be a reset)
		r := bufio.NewReader(c)
		r.ReadString('\n')
		io.WriteString(c, "+OK\r\n")
		r.ReadString('\n')
		c.Close()
	})
	checkResult(t, stepSpec(send("AUTH x\r\n"), expect("+OK"), send("PING\r\n"), expect("+PONG")), hangsUp.addr,
		`step 4 expect: connection closed by server, got "", want "+PONG"`, 0)

	flood := serve(t, writeThenHold(strings.Repeat("-", MaxRead+10)))
	checkResult(t, stepSpec(send("x"), expect("+OK")), flood.addr,
		`step 2 expect: no match in the first 16384 bytes, got "`+strings.Repeat("-", 64)+`"..., want "+OK"`, 0)

	// Only sends: the check passes once they are written.
	checkResult(t, stepSpec(send("QUIT\r\n")), hangsUp.addr, "", 0)
}

// A step's timeout bounds that step; the check's bounds them all, so a
// step cannot outlast what is left of it.
func TestStepsTimeouts(t *testing.T) {
	t.Parallel()
	slow := serve(t, func(c net.Conn) { // answers each line after 200ms
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
			if _, err := io.WriteString(c, "+OK\r\n"); err != nil {
				return
			}
		}
	})
	checkResult(t, stepSpec(send("A\n"), expect("+OK")), slow.addr, "", 200*time.Millisecond) // passes, after the answer
	checkResult(t, stepSpec(send("A\n"), within(expect("+OK"), 100*time.Millisecond)), slow.addr,
		`step 2 expect: timeout after 100ms, got "", want "+OK"`, 100*time.Millisecond)
	// The second answer would come at 400ms, past the check's 300ms; the
	// step's own 250ms from 200ms reaches past that too, so the check's
	// timeout is what ends it.
	checkResult(t, stepSpec(send("A\n"), expect("+OK"), send("B\n"), within(expect("+OK"), 250*time.Millisecond)), slow.addr,
		`step 4 expect: timeout after 300ms, got "", want "+OK"`, 300*time.Millisecond)
}

// Stop ends a check waiting in any step at once, even one that set its
// own deadline after Stop's.
func TestStepsStopOnCancel(t *testing.T) {
	t.Parallel()
	srv := serve(t, silent)
	spec := stepSpec(send("x"), within(expect("never"), time.Hour))
	spec.Timeout = 2 * time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	t0 := time.Now()
	if err := newProber(spec, srv.addr).check(ctx); err != errStopped || time.Since(t0) > 500*time.Millisecond {
		t.Errorf("%v after %v, want %v soon after 100ms", err, time.Since(t0), errStopped)
	}
	// Cancelled before the steps: not one of them runs.
	cancel()
	if err := newProber(spec, srv.addr).check(ctx); err != errStopped {
		t.Errorf("cancelled: %v", err)
	}
}

// Checks of a server may go to another endpoint than its traffic (a
// Patroni REST port beside PostgreSQL's): an http check there, Host the
// endpoint; reasons still name the server by its traffic address.
func TestCheckEndpoint(t *testing.T) {
	t.Parallel()
	patroni := testbed.StartPatroni(t, false)
	traffic := testbed.DeadAddr(t)
	spec := httpSpec
	spec.Path = "/primary"
	m, rec := start(t, spec, Target{Name: "pg/pg1", Addr: traffic, Check: patroni.Addr()})
	ev, _ := rec.next(t, 3*time.Second)
	if ev.Up || ev.Message != "server pg/pg1 is DOWN: http status 503, want 200, 2/2 failures" {
		t.Errorf("replica: %+v", ev)
	}
	st := m.Snapshot()[0]
	if st.Addr != traffic || st.CheckAddr != patroni.Addr() || st.LastError != "check pg/pg1 "+traffic.String()+": http status 503, want 200" {
		t.Errorf("state %+v", st)
	}
	patroni.SetLeader(true)
	if ev, _ := rec.next(t, 3*time.Second); !ev.Up {
		t.Errorf("leader: %+v", ev)
	}
	if patroni.Hits("/primary") < 4 {
		t.Errorf("%d GET /primary on the check endpoint", patroni.Hits("/primary"))
	}
	// The Host header names the endpoint checked.
	var host string
	srv := serve(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err == nil {
			host = req.Host
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n")
	})
	if err, _ := probeOnce(t, httpSpec, srv.addr); err != nil || host != srv.addr.String() {
		t.Errorf("%v, Host %q, want %s", err, host, srv.addr)
	}
}

// No allocation per read or per match in an expect, whatever the answer's
// pieces: a server trickling bytes costs the checker no garbage.
func TestExpectAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are not counted under -race")
	}
	answer := []byte("$615\r\n# Replication\r\nrole:master\r\n" + strings.Repeat("x", 600))
	for _, st := range []Step{expect("role:master"), expectRe(`(?m)^role:master\r$`), expectHex(0x0d, 0x0a, 'r')} {
		p := newProber(stepSpec(send("x"), st), netip.MustParseAddrPort("127.0.0.1:1"))
		ps := &p.steps[1]
		r := &trickle{}
		allocs := testing.AllocsPerRun(20, func() {
			r.b = answer
			if _, err := p.expect(context.Background(), r, ps, 0, time.Second); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per expect", ps.want(), allocs)
		}
	}
}

// trickle reads its bytes one at a time.
type trickle struct{ b []byte }

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0], r.b = r.b[0], r.b[1:]
	return 1, nil
}

func TestValidateSteps(t *testing.T) {
	ok := stepSpec(send("PING\r\n"), expect("+PONG"))
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	with := func(f func(*Spec)) Spec { s := ok; s.Steps = append([]Step(nil), ok.Steps...); f(&s); return s }
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{with(func(s *Spec) { s.Kind, s.Path, s.ExpectStatus = HTTP, "/", 200 }), "http check: steps run on a tcp check only"},
		{with(func(s *Spec) { s.Steps[0].Data = nil }), "step 1: send is empty"},
		{with(func(s *Spec) { s.Steps[1].Data = nil }), "step 2: expect is empty"},
		{with(func(s *Spec) { s.Steps[1].Data = make([]byte, MaxRead+1) }), "step 2: expect is 16385 bytes"},
		{with(func(s *Spec) { s.Steps[1] = Step{Action: ExpectRegexp} }), "step 2: expect regexp is missing"},
		{with(func(s *Spec) { s.Steps[1] = expectRe("x*") }), `step 2: expect regexp "x*" matches an empty answer`},
		{with(func(s *Spec) { s.Steps[1].Timeout = time.Second }), "step 2: timeout 1s out of 0..300ms"},
		{with(func(s *Spec) { s.Steps[0].Action = 9 }), "step 1: unknown action 9"},
	} {
		if err := tc.spec.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}
