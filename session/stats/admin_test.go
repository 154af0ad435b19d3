package stats

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"ringproxy/session"
	"ringproxy/session/admin"
	"ringproxy/session/testbed"
)

// adminSource is a live proxy whose page acts through the admin
// socket's command language, as cmd/ringproxy's instance.
type adminSource struct {
	*session.Proxy
	on    bool
	allow []netip.Prefix
	sent  []string
}

func (a *adminSource) StatsAdmin() (bool, []netip.Prefix) { return a.on, a.allow }
func (a *adminSource) Command(line string) string {
	a.sent = append(a.sent, line)
	return admin.Run(a.Proxy, line)
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// noRedirect posts without following the redirect back to the page.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func post(t *testing.T, base string, form url.Values, origin string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/admin/server", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// With stats_admin the page's buttons set a server ready, drain or maint
// through the admin socket's command; without it, or for a client the
// allow list leaves out, or a form another site posted, nothing changes.
func TestPageActions(t *testing.T) {
	p := startProxy(t, testbed.StartEcho(t).Addr())
	src := &adminSource{Proxy: p, on: true, allow: loopback}
	srv := httptest.NewServer(Handler(src))
	defer srv.Close()
	page := get(t, srv.URL+"/")
	if !strings.Contains(page, `<input type="hidden" name="server" value="app/app1">`) ||
		!strings.Contains(page, `<button name="state" value="ready" title="set server app/app1 state ready" disabled>ready</button>`) ||
		!strings.Contains(page, `<button name="state" value="maint" title="set server app/app1 state maint">maint</button>`) {
		t.Fatalf("the page has no ready/drain/maint buttons for app/app1 (ready disabled):\n%s", between(t, page, "app1", "</form>"))
	}

	code, body := post(t, srv.URL, url.Values{"server": {"app/app1"}, "state": {"drain"}}, srv.URL)
	if code != http.StatusSeeOther || p.Snapshot().Backends[0].Servers[0].Admin != "drain" {
		t.Fatalf("drain: %d %q, server %q", code, body, p.Snapshot().Backends[0].Servers[0].Admin)
	}
	if len(src.sent) != 1 || src.sent[0] != "set server app/app1 state drain" {
		t.Errorf("sent %q", src.sent)
	}
	if page := get(t, srv.URL+"/"); !strings.Contains(page, `value="drain" title="set server app/app1 state drain" disabled>`) {
		t.Errorf("after drain the page does not show drain as the state")
	}

	for _, c := range []struct {
		form   url.Values
		origin string
		code   int
		body   string
	}{
		{url.Values{"server": {"app/app1"}, "state": {"busy"}}, "", 400, "state: want ready, drain or maint"},
		{url.Values{"server": {"app/nope"}, "state": {"maint"}}, "", 400, "No such server."},
		{url.Values{"server": {"app/app1; shutdown sessions server app/app1"}, "state": {"maint"}}, "", 400, "server: want BACKEND/SERVER"},
		{url.Values{"server": {"app/app1"}, "state": {"maint"}}, "http://evil.example", 403, "a form from another origin (http://evil.example) may not act"},
	} {
		if code, body := post(t, srv.URL, c.form, c.origin); code != c.code || body != c.body {
			t.Errorf("%v from %q: %d %q, want %d %q", c.form, c.origin, code, body, c.code, c.body)
		}
	}

	src.allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if code, body := post(t, srv.URL, url.Values{"server": {"app/app1"}, "state": {"maint"}}, ""); code != 403 || body != "stats_admin_allow does not list 127.0.0.1" {
		t.Errorf("from a client not allowed: %d %q", code, body)
	}
	if strings.Contains(get(t, srv.URL+"/"), "<form") {
		t.Error("a client not allowed to act sees buttons")
	}
	src.on, src.allow = false, loopback
	if code, _ := post(t, srv.URL, url.Values{"server": {"app/app1"}, "state": {"maint"}}, ""); code != 403 {
		t.Errorf("stats_admin off: %d, want 403", code)
	}
	if st := p.Snapshot().Backends[0].Servers[0].Admin; st != "drain" {
		t.Errorf("refused actions changed the server to %q", st)
	}
	if len(src.sent) != 2 { // drain, and app/nope's
		t.Errorf("commands sent: %q", src.sent)
	}
	// A Source that cannot act serves a read-only page.
	ro := httptest.NewServer(Handler(p))
	defer ro.Close()
	if strings.Contains(get(t, ro.URL+"/"), "<form") {
		t.Error("a read-only page shows buttons")
	}
	if code, _ := post(t, ro.URL, url.Values{"server": {"app/app1"}, "state": {"ready"}}, ""); code != 403 {
		t.Errorf("read-only page took an action: %d", code)
	}
}
