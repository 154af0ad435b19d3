package stats

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ringproxy/session"
	"ringproxy/session/ctlnet"
)

// collector turns one snapshot per scrape into metrics: the counters are
// the workers' own, summed at scrape time, never kept in a registry.
type collector struct {
	src Source
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("ringproxy_"+name, help, labels, nil)
}

var (
	descSessionsCur   = desc("sessions_current", "Client sessions open now.")
	descSessionsMax   = desc("sessions_max", "Most client sessions open at once since start.")
	descQueueCur      = desc("queue_current", "Sessions waiting for a server slot now.")
	descFeSessions    = desc("frontend_sessions_total", "Sessions started.", "frontend")
	descFeCur         = desc("frontend_sessions_current", "Sessions open now.", "frontend")
	descFeRefused     = desc("frontend_refused_total", "Clients closed at accept (access lists, rates, limits).", "frontend")
	descFeBytesIn     = desc("frontend_bytes_in_total", "Bytes from clients.", "frontend")
	descFeBytesOut    = desc("frontend_bytes_out_total", "Bytes to clients.", "frontend")
	descFeEnded       = desc("frontend_sessions_ended_total", "Sessions ended, by reason.", "frontend", "reason")
	descFeRouteHits   = desc("frontend_route_hits_total", "Sessions a route sent to its backend; route is its place in the list, or \"default\".", "frontend", "route", "backend")
	descFeSessionsMax = desc("frontend_sessions_max", "Most sessions open at once since start.", "frontend")
	descBeQueue       = desc("backend_queue_current", "Sessions waiting for a slot of this backend now.", "backend")
	descBeQueueMax    = desc("backend_queue_max", "Longest the backend's queue was since start.", "backend")
	descBeSessionsMax = desc("backend_sessions_max", "Most sessions the backend held at once since start, on its servers or queued.", "backend")
	descBeDowntime    = desc("backend_downtime_seconds_total", "Time the backend spent with no server taking new sessions.", "backend")
	descSrvUp         = desc("server_up", "1 when the server takes new sessions.", "backend", "server")
	descSrvCur        = desc("server_sessions_current", "Sessions assigned to the server now.", "backend", "server")
	descSrvSessions   = desc("server_sessions_total", "Sessions that reached the server.", "backend", "server")
	descSrvFailures   = desc("server_connect_failures_total", "Connects to the server that failed.", "backend", "server")
	descSrvBytesIn    = desc("server_bytes_in_total", "Bytes sent to the server.", "backend", "server")
	descSrvBytesOut   = desc("server_bytes_out_total", "Bytes received from the server.", "backend", "server")
	descSrvSessMax    = desc("server_sessions_max", "Most sessions assigned to the server at once since start.", "backend", "server")
	descSrvRetries    = desc("server_retries_total", "Failed connects retried on the server.", "backend", "server")
	descSrvRedisp     = desc("server_redispatches_total", "Sessions that left the server for another one after failed connects.", "backend", "server")
	descSrvDowntime   = desc("server_downtime_seconds_total", "Time the server spent taking no new sessions (DOWN, or out by an operator).", "backend", "server")
	descSrvChecks     = desc("server_checks_total", "Health checks run.", "backend", "server")
	descSrvAddrChange = desc("server_address_changes_total", "Times the server's address changed at runtime (set server addr, DNS).", "backend", "server")
	descSrvResFails   = desc("server_resolution_failures_total", "Times the server's name started failing to resolve.", "backend", "server")
	descSrvResOuts    = desc("server_resolution_outs_total", "Times the server was taken out by resolution (MAINT (resolution)).", "backend", "server")
	descSrvCheckFails = desc("server_check_failures_total", "Health checks that failed.", "backend", "server")
	descSrvCheckSkips = desc("server_checks_skipped_total", "Health checks not run for a local shortage (no fd, memory or port); not counted against the server.", "backend", "server")
	descWkTurns       = desc("worker_loop_turns_total", "Passes of a worker loop.", "worker")
	descWkCompletions = desc("worker_completions_total", "Completions a worker loop handled; over turns, the batch size.", "worker")
	descWkSessions    = desc("worker_sessions_total", "Sessions a worker started.", "worker")
	descCtlOpen       = desc("control_connections_current", "Connections open now on a control listener (admin socket, stats).", "listener")
	descCtlErrors     = desc("control_accept_errors_total", "Failed accepts on a control listener, each retried after a pause.", "listener")
	descCtlRefused    = desc("control_refused_total", "Connections a control listener closed at once, past its limit.", "listener")
	descStateWrites   = desc("state_file_writes_total", "Times the state file was written and renamed into place.")
	descStateFailures = desc("state_file_write_failures_total", "Writes of the state file that failed (each logged; the next change tries again).")
)

// processDescs are the families of session.ProcessCounters, by index:
// nil for a counter /metrics does not show.
var processDescs = func() []*prometheus.Desc {
	cs := session.ProcessCounters()
	ds := make([]*prometheus.Desc, len(cs))
	for i, c := range cs {
		if c.Metric == "" {
			continue
		}
		var labels []string
		if c.Label != "" {
			labels = []string{c.Label}
		}
		ds[i] = desc(c.Metric, c.Help, labels...)
	}
	return ds
}()

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessionsCur, descSessionsMax, descQueueCur, descFeSessions, descFeCur, descFeRefused,
		descFeBytesIn, descFeBytesOut, descFeEnded, descFeRouteHits, descFeSessionsMax, descBeQueue, descBeQueueMax, descBeSessionsMax,
		descBeDowntime, descSrvUp, descSrvCur, descSrvSessions, descSrvFailures, descSrvBytesIn, descSrvBytesOut, descSrvSessMax,
		descSrvRetries, descSrvRedisp, descSrvDowntime, descSrvChecks, descSrvCheckFails, descSrvCheckSkips, descSrvAddrChange,
		descSrvResFails, descSrvResOuts, descWkTurns,
		descWkCompletions, descWkSessions, descCtlOpen, descCtlErrors, descCtlRefused,
		descStateWrites, descStateFailures} {
		ch <- d
	}
	for _, d := range processDescs {
		if d != nil {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	collectProcess(ch, &s.Process)
	for _, f := range s.Frontends {
		collectFrontend(ch, &f)
	}
	for _, wk := range s.Workers {
		id := strconv.Itoa(wk.ID)
		ch <- counter(descWkTurns, wk.Turns, id)
		ch <- counter(descWkCompletions, wk.Completions, id)
		ch <- counter(descWkSessions, wk.Sessions, id)
	}
	for _, b := range s.Backends {
		ch <- gauge(descBeQueue, float64(b.CurQueue), b.Name)
		ch <- gauge(descBeQueueMax, float64(b.MaxQueue), b.Name)
		ch <- gauge(descBeSessionsMax, float64(b.MaxSessions), b.Name)
		ch <- seconds(descBeDowntime, b.Downtime, b.Name)
		for _, srv := range b.Servers {
			collectServer(ch, b.Name, &srv)
		}
	}
	if cs, ok := c.src.(ControlSource); ok {
		collectControl(ch, cs.ControlListeners())
	}
	if ss, ok := c.src.(StateFileSource); ok {
		if writes, failures, on := ss.StateFile(); on {
			ch <- counter(descStateWrites, writes)
			ch <- counter(descStateFailures, failures)
		}
	}
}

func collectControl(ch chan<- prometheus.Metric, listeners map[string]ctlnet.Counts) {
	for name, n := range listeners {
		ch <- gauge(descCtlOpen, float64(n.Open), name)
		ch <- counter(descCtlErrors, n.AcceptErrors, name)
		ch <- counter(descCtlRefused, n.Refused, name)
	}
}

func counter(d *prometheus.Desc, v uint64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func seconds(d *prometheus.Desc, v session.Seconds, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, time.Duration(v).Seconds(), labels...)
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func collectProcess(ch chan<- prometheus.Metric, p *session.ProcessStats) {
	ch <- gauge(descSessionsCur, float64(p.CurConns))
	ch <- gauge(descSessionsMax, float64(p.MaxConns))
	ch <- gauge(descQueueCur, float64(p.CurQueue))
	for i, c := range session.ProcessCounters() {
		if processDescs[i] == nil {
			continue
		}
		for j, v := range c.Values(&p.Stats) {
			var labels []string
			if c.Names != nil {
				labels = []string{c.Names[j]}
			}
			ch <- prometheus.MustNewConstMetric(processDescs[i], prometheus.CounterValue, baseUnit(c.Unit, v), labels...)
		}
	}
}

// baseUnit is v as Prometheus wants it: seconds for a time.
func baseUnit(u session.Unit, v uint64) float64 {
	if u == session.UnitNanoseconds {
		return time.Duration(v).Seconds()
	}
	return float64(v)
}

func collectFrontend(ch chan<- prometheus.Metric, f *session.FrontendStats) {
	ch <- counter(descFeSessions, f.Sessions, f.Name)
	ch <- gauge(descFeCur, float64(f.CurSessions), f.Name)
	ch <- counter(descFeRefused, f.Refused, f.Name)
	ch <- counter(descFeBytesIn, f.BytesIn, f.Name)
	ch <- counter(descFeBytesOut, f.BytesOut, f.Name)
	ch <- gauge(descFeSessionsMax, float64(f.MaxSessions), f.Name)
	for k, v := range f.Ended {
		ch <- counter(descFeEnded, v, f.Name, k)
	}
	for i, r := range f.Routes {
		name := strconv.Itoa(i + 1)
		if r.Default {
			name = "default"
		}
		ch <- counter(descFeRouteHits, r.Hits, f.Name, name, r.Backend)
	}
}

func collectServer(ch chan<- prometheus.Metric, backend string, s *session.ServerStats) {
	up := 0.0
	if s.TakesSessions() {
		up = 1
	}
	ch <- gauge(descSrvUp, up, backend, s.Name)
	ch <- gauge(descSrvCur, float64(s.CurSessions), backend, s.Name)
	ch <- counter(descSrvSessions, s.Sessions, backend, s.Name)
	ch <- counter(descSrvFailures, s.ConnFailures, backend, s.Name)
	ch <- counter(descSrvBytesIn, s.BytesIn, backend, s.Name)
	ch <- counter(descSrvBytesOut, s.BytesOut, backend, s.Name)
	ch <- gauge(descSrvSessMax, float64(s.MaxSessions), backend, s.Name)
	ch <- counter(descSrvRetries, s.Retries, backend, s.Name)
	ch <- counter(descSrvRedisp, s.Redispatches, backend, s.Name)
	ch <- seconds(descSrvDowntime, s.Downtime, backend, s.Name)
	ch <- counter(descSrvAddrChange, s.AddrChanges, backend, s.Name)
	if r := s.Resolution; r != nil {
		ch <- counter(descSrvResFails, r.Failures, backend, s.Name)
		ch <- counter(descSrvResOuts, r.Outs, backend, s.Name)
	}
	if s.Check != nil {
		ch <- counter(descSrvChecks, s.Check.Checks, backend, s.Name)
		ch <- counter(descSrvCheckFails, s.Check.CheckFailures, backend, s.Name)
		ch <- counter(descSrvCheckSkips, s.Check.ChecksSkipped, backend, s.Name)
	}
}
