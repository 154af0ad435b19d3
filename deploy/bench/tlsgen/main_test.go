package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseSites(t *testing.T) {
	s, err := parseSites("a.bench.test=127.0.0.1:1, b.bench.test=127.0.0.1:2")
	if err != nil || len(s) != 2 || s[1] != (site{"b.bench.test", "127.0.0.1:2"}) {
		t.Fatalf("parseSites = %v, %v", s, err)
	}
	for _, bad := range []string{"", "a.bench.test", "=127.0.0.1:1", "a="} {
		if _, err := parseSites(bad); err == nil {
			t.Errorf("parseSites(%q): want an error", bad)
		}
	}
}

// Three sites on free ports; a client sending all three names to the first
// one: with -expect that site every answer is right, without it the two
// other names are wrong-backend answers, and a closed port is an error.
func TestServeAndRun(t *testing.T) {
	names := []string{"a.bench.test", "b.bench.test", "c.bench.test"}
	var sites []site
	for _, n := range names {
		sites = append(sites, site{n, "127.0.0.1:0"})
	}
	s, err := serve(sites)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	a := s.lns[0].Addr().String()
	c := client{addr: a, names: names, expect: "a.bench.test", conns: 2, dur: 150 * time.Millisecond, timeout: 2 * time.Second}
	r := run(c)
	if r.Connections < 3 || r.Errors != 0 || r.WrongBackend != 0 {
		t.Fatalf("expect a: %+v", r)
	}
	for _, n := range names {
		if r.PerName[n] == 0 {
			t.Errorf("no connection sent SNI %s: %v", n, r.PerName)
		}
	}
	if r.P50us <= 0 || r.P99us < r.P50us || r.CPS <= 0 {
		t.Errorf("figures: %+v", r)
	}

	c.expect = ""
	r = run(c)
	if r.WrongBackend == 0 || r.Connections == 0 || r.Errors != 0 {
		t.Fatalf("no expect: %+v", r)
	}
	if !strings.Contains(r.LastWrong, "want backend") || r.PerName["a.bench.test"] != r.Connections {
		t.Errorf("no expect: %+v", r)
	}

	// Each site answers with its own name and certificate.
	for i, n := range names {
		c := client{addr: s.lns[i].Addr().String(), timeout: 2 * time.Second}
		if err := c.one(n, n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}

	ln := s.lns[2].Addr().String()
	s.close()
	r = run(client{addr: ln, names: names, conns: 1, dur: 50 * time.Millisecond, timeout: time.Second})
	if r.Connections != 0 || r.Errors == 0 || r.LastError == "" {
		t.Fatalf("closed port: %+v", r)
	}
}
