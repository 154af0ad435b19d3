// Package stats serves a proxy's state over HTTP for [admin].stats:
// /metrics in the Prometheus text format and /stats.json. It reads
// session.Proxy snapshots (each worker copies its counters in its own
// loop) and must never touch a worker's state itself or run on a worker.
package stats

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ringproxy/session"
	"ringproxy/session/ctlnet"
)

// Source is what the handlers read: *session.Proxy.
type Source interface {
	Snapshot() session.Snapshot
}

// ControlSource is a Source that also counts the process's control
// listeners (the admin socket, this stats listener), by the name /metrics
// labels them with. They belong to the process, not to a generation of
// the proxy, so they are not in session.Snapshot; /metrics reports them
// when its Source has them (cmd/ringproxy's does).
type ControlSource interface {
	Source
	ControlListeners() map[string]ctlnet.Counts
}

// StateFileSource is a Source that keeps a state file
// ([global].state_file): /metrics counts its writes and failed writes
// while it is on (ok). The file belongs to the process, like the control
// listeners.
type StateFileSource interface {
	Source
	StateFile() (writes, failures uint64, ok bool)
}

// Handler serves the human page at /, /metrics and /stats.json for src,
// and POST /admin/server when src is an AdminSource that allows it.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{src: src})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", pageHandler(src))
	mux.HandleFunc("POST /admin/server", serverAction(src))
	mux.HandleFunc("GET /stats.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(src.Snapshot())
	})
	return mux
}
