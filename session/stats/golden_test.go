package stats

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// The names operators build dashboards and alerts on (metric families,
// HELP and TYPE lines, label sets, /stats.json keys) and the process
// counters on the page change only on purpose: a change shows up here as
// a golden diff to review. After a deliberate one:
// go test -ldflags=-checklinkname=0 ./session/stats -run Golden -update
func TestGoldenOutputs(t *testing.T) {
	srv := httptest.NewServer(Handler(fakeSource{fakeSnapshot()}))
	defer srv.Close()
	page := get(t, srv.URL+"/")
	for _, c := range []struct{ file, got string }{
		{"metrics.golden", get(t, srv.URL+"/metrics")},
		{"stats.json.golden", get(t, srv.URL+"/stats.json")},
		{"page_counters.golden", between(t, page, "<header>", "</header>") + "\n" +
			between(t, page, "<h2>Process counters</h2>", "</div>") + "\n"},
	} {
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, []byte(c.got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.got != string(want) {
			t.Errorf("%s differs from the output (-update rewrites it):\n%s", c.file, lineDiff(string(want), c.got))
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// between is s from the first from to the first to after it, both included.
func between(t *testing.T, s, from, to string) string {
	t.Helper()
	i := strings.Index(s, from)
	j := strings.Index(s[max(i, 0):], to)
	if i < 0 || j < 0 {
		t.Fatalf("no %q ... %q in the page", from, to)
	}
	return s[i : i+j+len(to)]
}

// lineDiff lists the lines only one of want and got has, in order.
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(the same lines, in another order)"
	}
	return b.String()
}
