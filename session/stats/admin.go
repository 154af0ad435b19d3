package stats

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"ringproxy/session"
)

// AdminSource is a Source whose page may act: it answers the admin
// socket's commands (Command), and says whether the page may send them
// and for which clients (StatsAdmin, read at each request so a reload
// applies). The page sends nothing the socket does not take, so its
// rules and answers are the socket's.
type AdminSource interface {
	Source
	StatsAdmin() (on bool, allow []netip.Prefix)
	Command(line string) string
}

// pageData is what the page template reads: the snapshot, and whether
// the server rows get their ready/drain/maint buttons.
type pageData struct {
	*session.Snapshot
	Admin bool
}

// adminAllowed says whether r may act through the page: stats_admin on,
// its client in the allow list, and not a form another site's page
// posted (its Origin, when a browser sends one, must be this host).
func adminAllowed(src Source, r *http.Request) (bool, string) {
	as, ok := src.(AdminSource)
	if !ok {
		return false, "this page is read-only"
	}
	on, allow := as.StatsAdmin()
	if !on {
		return false, "this page is read-only: set stats_admin = true in [admin]"
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	addr, err := netip.ParseAddr(host)
	if err != nil || !inPrefixes(addr.Unmap(), allow) {
		return false, "stats_admin_allow does not list " + host
	}
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			return false, "a form from another origin (" + o + ") may not act"
		}
	}
	return true, ""
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// serverAction is POST /admin/server: server=BACKEND/SERVER and
// state=ready|drain|maint, sent as the socket's `set server B/S state`;
// it answers with a redirect back to the page, or the socket's error.
func serverAction(src Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, why := adminAllowed(src, r); !ok {
			http.Error(w, why, http.StatusForbidden)
			return
		}
		srv, state := r.PostFormValue("server"), r.PostFormValue("state")
		if _, ok := session.ParseAdminState(state); !ok {
			http.Error(w, "state: want ready, drain or maint", http.StatusBadRequest)
			return
		}
		if srv == "" || strings.ContainsAny(srv, " \t\r\n;") {
			http.Error(w, "server: want BACKEND/SERVER", http.StatusBadRequest)
			return
		}
		if out := src.(AdminSource).Command("set server " + srv + " state " + state); out != "" {
			http.Error(w, strings.TrimPrefix(strings.TrimSpace(out), "error: "), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

// pageAdmin says whether the page for r shows the buttons.
func pageAdmin(src Source, r *http.Request) bool {
	ok, _ := adminAllowed(src, r)
	return ok
}
