package config

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
	"ringproxy/session/health"
)

// Steps come out in order with their bytes, regexps and timeouts; the
// endpoint keys combine per server as HAProxy's port and addr.
func TestCheckStepsValues(t *testing.T) {
	c := parseOK(t, fe+`
[[backend]]
name = "app"
  [backend.check]
  timeout = "800ms"
  port = 8008
  [[backend.check.step]]
  send = 'AUTH s3cret\r\n'
  [[backend.check.step]]
  expect = "+OK"
  [[backend.check.step]]
  send_hex = "00000008 04D2162f"
  [[backend.check.step]]
  expect_regex = "^[SN]"
  timeout = "200ms"
  [[backend.check.step]]
  expect_hex = "53"
  [[backend.check.step]]
  send = "\\x00\\t\\\\"
  [[backend.server]]
  name = "a"
  address = "10.0.2.11:5432"
  [[backend.server]]
  name = "b"
  address = "10.0.2.12:5432"
  check_port = 9008
  [[backend.server]]
  name = "c"
  address = "10.0.2.13:5432"
  check_address = "10.9.9.9"
`)
	be := c.Backends[0]
	ck := be.Check
	if ck.Kind != "tcp" || ck.Port != 8008 || ck.Address.IsValid() || len(ck.Steps) != 6 {
		t.Fatalf("check %+v", ck)
	}
	want := []struct {
		action  health.Action
		data    string
		hex     bool
		re      string
		timeout time.Duration
	}{
		{health.SendBytes, "AUTH s3cret\r\n", false, "", 0},
		{health.ExpectBytes, "+OK", false, "", 0},
		{health.SendBytes, "\x00\x00\x00\x08\x04\xd2\x16\x2f", true, "", 0},
		{health.ExpectRegexp, "", false, "^[SN]", 200 * time.Millisecond},
		{health.ExpectBytes, "S", true, "", 0},
		{health.SendBytes, "\x00\t\\", false, "", 0},
	}
	for i, w := range want {
		st := ck.Steps[i]
		re := ""
		if st.Regexp != nil {
			re = st.Regexp.String()
		}
		if st.Action != w.action || string(st.Data) != w.data || st.Hex != w.hex || re != w.re || st.Timeout != w.timeout {
			t.Errorf("step %d = %+v, want %+v", i+1, st, w)
		}
	}
	if err := session.HealthSpec(ck).Validate(); err != nil {
		t.Errorf("the checker refuses what the loader accepted: %v", err)
	}
	for i, w := range []string{"10.0.2.11:8008", "10.0.2.12:9008", "10.9.9.9:8008"} {
		if got := session.CheckAddr(ck, be.Servers[i]); got != netip.MustParseAddrPort(w) {
			t.Errorf("server %s checked at %v, want %s", be.Servers[i].Name, got, w)
		}
	}
	// address alone keeps each server's port; no key keeps the server's own.
	c = parseOK(t, fe+be1("[backend.check]\naddress = \"::1\"\n"))
	if got := session.CheckAddr(c.Backends[0].Check, c.Backends[0].Servers[0]); got != netip.MustParseAddrPort("[::1]:9000") {
		t.Errorf("address only: %v", got)
	}
	c = parseOK(t, fe+be1("[backend.check]\n"))
	if got := session.CheckAddr(c.Backends[0].Check, c.Backends[0].Servers[0]); got != netip.MustParseAddrPort("127.0.0.1:9000") {
		t.Errorf("no endpoint keys: %v", got)
	}
}

// be1 is be with extra tables after its server.
func be1(extra string) string { return be + extra }

// The shorthand's send and expect read escapes as a step's do.
func TestCheckShorthandEscapes(t *testing.T) {
	c := parseOK(t, fe+be+"[backend.check]\nkind = \"expect\"\nsend = 'PING\\r\\n'\nexpect = '+PONG\\r\\n'\n")
	if ck := c.Backends[0].Check; ck.Send != "PING\r\n" || ck.Expect != "+PONG\r\n" {
		t.Errorf("send %q expect %q", ck.Send, ck.Expect)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`PING\r\n`:          "PING\r\n",
		"PING\r\n":          "PING\r\n", // TOML's own escapes came first: nothing left to do
		`a\tb\\c`:           "a\tb\\c",
		`\x00\x7F\xff\xAb`:  "\x00\x7f\xff\xab",
		`AUTH "p w"`:        `AUTH "p w"`,
		``:                  ``,
		`\\x00`:             `\x00`,
		"caf\u00e9":         "caf\u00e9",
		`INFO replication`:  "INFO replication",
		`\r\n\r\n\r\n\r\n.`: "\r\n\r\n\r\n\r\n.",
	} {
		got, err := unescape(in)
		if err != nil || string(got) != want {
			t.Errorf("unescape(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		`PING\`:   "ends in a lone backslash",
		`\q`:      `unknown escape \q`,
		`\0`:      `unknown escape \0`,
		`\x4`:     `bad escape "\\x4": \x wants two hex digits`,
		`\xg0`:    `bad escape "\\xg0"`,
		`a\x`:     `bad escape "\\x"`,
		`\"quote`: `unknown escape \"`,
	} {
		if _, err := unescape(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("unescape(%q): %v, want %q", in, err, want)
		}
	}
}

func TestParseHex(t *testing.T) {
	for in, want := range map[string]string{
		"00000008 04d2162f":  "0000000804d2162f",
		"53":                 "53",
		"4E":                 "4e",
		" 00\t0a  ":          "000a",
		"deadBEEF":           "deadbeef",
		"00 00 00 08 04 d2 ": "0000000804d2",
	} {
		got, err := parseHex(in)
		if err != nil || hex.EncodeToString(got) != want {
			t.Errorf("parseHex(%q) = %x, %v; want %s", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"":         "no hex digits",
		"   ":      "no hex digits",
		"5":        `group "5" has an odd number of digits`,
		"000 8":    `group "000" has an odd number of digits`,
		"0x53":     `'x' is not a hex digit`,
		"53,4e":    `',' is not a hex digit`,
		"\u00e953": `'é' is not a hex digit`,
	} {
		if _, err := parseHex(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseHex(%q): %v, want %q", in, err, want)
		}
	}
}

// escapeAll writes b in unescape's syntax, every byte that is not a
// printable ASCII letter as \xHH: unescape must read it back exactly.
func escapeAll(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		switch {
		case c == '\\':
			s.WriteString(`\\`)
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			s.WriteByte(c)
		default:
			s.WriteString(`\x` + hex.EncodeToString([]byte{c}))
		}
	}
	return s.String()
}

// FuzzUnescape: unescape never panics, its output is never longer than
// its input, text without a backslash is itself, and any bytes written
// with escapes read back exactly.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{`PING\r\n`, `AUTH x\r\n`, `\x00\xff`, `\`, `\x`, `\x1`, `\\\\`, "caf\u00e9", `\q`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := unescape(s)
		if err == nil && len(out) > len(s) {
			t.Fatalf("unescape(%q) = %q: longer than its input", s, out)
		}
		if !strings.Contains(s, `\`) && (err != nil || string(out) != s) {
			t.Fatalf("unescape(%q) = %q, %v: text without a backslash must be itself", s, out, err)
		}
		if back, err := unescape(escapeAll([]byte(s))); err != nil || !bytes.Equal(back, []byte(s)) {
			t.Fatalf("round trip of %q: %q, %v", s, back, err)
		}
	})
}

// FuzzHex: parseHex never panics, reads what hex.EncodeToString writes,
// in groups of whole bytes too, and accepts only hex digits and blanks.
func FuzzHex(f *testing.F) {
	for _, s := range []string{"00000008 04d2162f", "53", "5", " ", "zz", "0x53"} {
		f.Add(s, []byte{0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f})
	}
	f.Fuzz(func(t *testing.T, s string, b []byte) {
		if out, err := parseHex(s); err == nil {
			if len(out) == 0 || len(out) > len(s)/2 {
				t.Fatalf("parseHex(%q) = %x", s, out)
			}
			for _, c := range []byte(s) {
				if !isHex(c) && c != ' ' && c != '\t' {
					t.Fatalf("parseHex(%q) accepted %q", s, c)
				}
			}
		}
		if len(b) == 0 {
			return
		}
		h := hex.EncodeToString(b)
		var grouped strings.Builder
		for i := 0; i < len(h); i += 2 {
			grouped.WriteString(h[i : i+2])
			if i%8 == 6 {
				grouped.WriteString(" ")
			}
		}
		for _, in := range []string{h, strings.ToUpper(h), grouped.String()} {
			if out, err := parseHex(in); err != nil || !bytes.Equal(out, b) {
				t.Fatalf("parseHex(%q) = %x, %v; want %x", in, out, err, b)
			}
		}
	})
}

// check's summary says where each server is checked and lists the steps
// in the config's own words.
func TestCheckSummary(t *testing.T) {
	s := Summary(parseOK(t, fe+`
[[backend]]
name = "app"
  [backend.check]
  port = 8008
  [[backend.check.step]]
  send_hex = "00000008 04d2162f 00"
  [[backend.check.step]]
  expect_regex = "^[SN]"
  timeout = "200ms"
  [[backend.check.step]]
  send = 'PING\r\n'
  [[backend.check.step]]
  expect_hex = "2b504f4e47"
  [[backend.server]]
  name = "a"
  address = "10.0.0.1:5432"
  [[backend.server]]
  name = "b"
  address = "10.0.0.2:5432"
  check_address = "10.0.9.2"
  check_port = 9008
`))
	for _, want := range []string{
		"    check tcp at port 8008: connect, then 4 steps; every 2s, timeout 1s, rise 2, fall 3\n",
		"      step 1: send_hex 00000008 04d2162f 00\n",
		"      step 2: expect_regex \"^[SN]\" within 200ms\n",
		"      step 3: send \"PING\\r\\n\"\n",
		"      step 4: expect_hex 2b504f4e 47\n",
		"    check of b at 10.0.9.2:9008\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "check of a ") {
		t.Errorf("server a has no endpoint of its own:\n%s", s)
	}
}
