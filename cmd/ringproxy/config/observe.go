package config

import (
	"time"

	"ringproxy/session"
)

// The on_error values; mark-down is the only one without a regular check.
var onErrors = []string{"fastinter", "fail-check", "sudden-death", "mark-down"}

// readObserve reads observe = "layer4" and its keys, which mean nothing
// without it. With a regular check on_error defaults to HAProxy's
// fail-check; without one a server is marked down (nginx's max_fails)
// and back after observe_downtime (nginx's fail_timeout).
func readObserve(t *table, checked bool) *session.Observe {
	keys := []string{"error_limit", "on_error", "observe_downtime"}
	v := t.str("observe", "")
	switch v {
	case "layer4":
	case "":
		for _, k := range keys {
			if t.has(k) {
				t.fail(k, nil, "%s needs observe = \"layer4\": without it live traffic is not observed this way", k)
			}
		}
		return nil
	default:
		t.fail("observe", nil, "unknown observe %q (want \"layer4\", or leave it out)", v)
		t.known(keys...)
		return nil
	}
	o := &session.Observe{ErrorLimit: t.integer("error_limit", 10, 1, 1000000)}
	def := "fail-check"
	if !checked {
		def = "mark-down"
	}
	o.OnError = t.str("on_error", def)
	switch {
	case !contains(onErrors, o.OnError):
		t.fail("on_error", nil, "unknown on_error %q (want fastinter, fail-check, sudden-death or mark-down)", o.OnError)
	case !checked && o.OnError != "mark-down":
		t.fail("on_error", nil, "on_error = %q acts on a regular check and the backend has none: without [backend.check] a server is marked down (mark-down), back after observe_downtime", o.OnError)
	}
	if checked {
		if t.has("observe_downtime") {
			t.fail("observe_downtime", nil, "with [backend.check], a server marked down comes back when its checks pass: observe_downtime is for backends without one")
		}
	} else {
		o.Downtime = t.duration("observe_downtime", 10*time.Second, true)
	}
	return o
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
