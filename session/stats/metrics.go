package stats

import (
	"strconv"

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
	descAccept        = desc("accept_total", "Connections handed over by the kernel, by outcome.", "outcome")
	descAcceptErrors  = desc("accept_errors_total", "Accept completions with an error.")
	descPauses        = desc("listener_pauses_total", "Times a listener stopped accepting, by cause.", "cause")
	descConnAttempts  = desc("connect_attempts_total", "Server connects started.")
	descConnFailures  = desc("connect_failures_total", "Server connects that failed.")
	descConnTimeouts  = desc("connect_timeouts_total", "Server connects cancelled by timeout_connect.")
	descRetries       = desc("retries_total", "Connect retries.")
	descRedispatches  = desc("redispatches_total", "Retries sent to another server.")
	descBufWaits      = desc("buffer_waits_total", "Receives that found the buffer pool empty.")
	descBackoffs      = desc("socket_backoffs_total", "Server sockets delayed because the fd table was full.")
	descSpliced       = desc("spliced_total", "Stream directions switched to splice (long transfers).")
	descSpliceFailed  = desc("splice_failures_total", "Switches to splice that found no pipe and stayed on buffers.")
	descHandedOver    = desc("handed_over_total", "Parked clients a stopping generation handed to the one that took over.")
	descProxyErrors   = desc("proxy_header_errors_total", "PROXY protocol header failures, by reason.", "reason")
	descLate          = desc("late_completions_total", "Completions for a recycled session slot, dropped.")
	descTransitions   = desc("server_transitions_total", "Servers gone UP or DOWN.")
	descLogDropped    = desc("log_dropped_total", "Access log lines dropped because the writer fell behind.")
	descFeSessions    = desc("frontend_sessions_total", "Sessions started.", "frontend")
	descFeCur         = desc("frontend_sessions_current", "Sessions open now.", "frontend")
	descFeRefused     = desc("frontend_refused_total", "Clients closed at accept (access lists, rates, limits).", "frontend")
	descFeBytesIn     = desc("frontend_bytes_in_total", "Bytes from clients.", "frontend")
	descFeBytesOut    = desc("frontend_bytes_out_total", "Bytes to clients.", "frontend")
	descFeEnded       = desc("frontend_sessions_ended_total", "Sessions ended, by reason.", "frontend", "reason")
	descBeQueue       = desc("backend_queue_current", "Sessions waiting for a slot of this backend now.", "backend")
	descSrvUp         = desc("server_up", "1 when the server takes new sessions.", "backend", "server")
	descSrvCur        = desc("server_sessions_current", "Sessions assigned to the server now.", "backend", "server")
	descSrvSessions   = desc("server_sessions_total", "Sessions that reached the server.", "backend", "server")
	descSrvFailures   = desc("server_connect_failures_total", "Connects to the server that failed.", "backend", "server")
	descSrvBytesIn    = desc("server_bytes_in_total", "Bytes sent to the server.", "backend", "server")
	descSrvBytesOut   = desc("server_bytes_out_total", "Bytes received from the server.", "backend", "server")
	descSrvChecks     = desc("server_checks_total", "Health checks run.", "backend", "server")
	descSrvCheckFails = desc("server_check_failures_total", "Health checks that failed.", "backend", "server")
	descSrvCheckSkips = desc("server_checks_skipped_total", "Health checks not run for a local shortage (no fd, memory or port); not counted against the server.", "backend", "server")
	descWkTurns       = desc("worker_loop_turns_total", "Passes of a worker loop.", "worker")
	descWkCompletions = desc("worker_completions_total", "Completions a worker loop handled; over turns, the batch size.", "worker")
	descWkSessions    = desc("worker_sessions_total", "Sessions a worker started.", "worker")
	descCtlOpen       = desc("control_connections_current", "Connections open now on a control listener (admin socket, stats).", "listener")
	descCtlErrors     = desc("control_accept_errors_total", "Failed accepts on a control listener, each retried after a pause.", "listener")
	descCtlRefused    = desc("control_refused_total", "Connections a control listener closed at once, past its limit.", "listener")
)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessionsCur, descSessionsMax, descQueueCur, descAccept, descAcceptErrors,
		descPauses, descConnAttempts, descConnFailures, descConnTimeouts, descRetries, descRedispatches, descBufWaits,
		descBackoffs, descSpliced, descSpliceFailed, descHandedOver, descProxyErrors, descLate, descTransitions, descLogDropped, descFeSessions, descFeCur, descFeRefused,
		descFeBytesIn, descFeBytesOut, descFeEnded, descBeQueue, descSrvUp, descSrvCur, descSrvSessions, descSrvFailures,
		descSrvBytesIn, descSrvBytesOut, descSrvChecks, descSrvCheckFails, descSrvCheckSkips, descWkTurns, descWkCompletions, descWkSessions,
		descCtlOpen, descCtlErrors, descCtlRefused} {
		ch <- d
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
		for _, srv := range b.Servers {
			collectServer(ch, b.Name, &srv)
		}
	}
	if cs, ok := c.src.(ControlSource); ok {
		collectControl(ch, cs.ControlListeners())
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

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func collectProcess(ch chan<- prometheus.Metric, p *session.ProcessStats) {
	ch <- gauge(descSessionsCur, float64(p.CurSessions))
	ch <- gauge(descSessionsMax, float64(p.MaxSessions))
	ch <- gauge(descQueueCur, float64(p.CurQueue))
	for k, v := range p.Accept {
		ch <- counter(descAccept, v, k)
	}
	ch <- counter(descAcceptErrors, p.AcceptErrors)
	for k, v := range p.Pauses {
		ch <- counter(descPauses, v, k)
	}
	ch <- counter(descConnAttempts, p.ConnAttempts)
	ch <- counter(descConnFailures, p.ConnFailures)
	ch <- counter(descConnTimeouts, p.ConnTimeouts)
	ch <- counter(descRetries, p.Retries)
	ch <- counter(descRedispatches, p.Redispatches)
	ch <- counter(descBufWaits, p.BufWaits)
	ch <- counter(descBackoffs, p.SocketBackoffs)
	ch <- counter(descSpliced, p.Spliced)
	ch <- counter(descSpliceFailed, p.SpliceFailures)
	ch <- counter(descHandedOver, p.HandedOver)
	for k, v := range p.ProxyErrors {
		ch <- counter(descProxyErrors, v, k)
	}
	ch <- counter(descLate, p.Late)
	ch <- counter(descTransitions, p.ServerTransitions)
	ch <- counter(descLogDropped, p.LogDropped)
}

func collectFrontend(ch chan<- prometheus.Metric, f *session.FrontendStats) {
	ch <- counter(descFeSessions, f.Sessions, f.Name)
	ch <- gauge(descFeCur, float64(f.CurSessions), f.Name)
	ch <- counter(descFeRefused, f.Refused, f.Name)
	ch <- counter(descFeBytesIn, f.BytesIn, f.Name)
	ch <- counter(descFeBytesOut, f.BytesOut, f.Name)
	for k, v := range f.Ended {
		ch <- counter(descFeEnded, v, f.Name, k)
	}
}

func collectServer(ch chan<- prometheus.Metric, backend string, s *session.ServerStats) {
	up := 0.0
	if s.Up {
		up = 1
	}
	ch <- gauge(descSrvUp, up, backend, s.Name)
	ch <- gauge(descSrvCur, float64(s.CurSessions), backend, s.Name)
	ch <- counter(descSrvSessions, s.Sessions, backend, s.Name)
	ch <- counter(descSrvFailures, s.ConnFailures, backend, s.Name)
	ch <- counter(descSrvBytesIn, s.BytesIn, backend, s.Name)
	ch <- counter(descSrvBytesOut, s.BytesOut, backend, s.Name)
	if s.Check != nil {
		ch <- counter(descSrvChecks, s.Check.Checks, backend, s.Name)
		ch <- counter(descSrvCheckFails, s.Check.CheckFailures, backend, s.Name)
		ch <- counter(descSrvCheckSkips, s.Check.ChecksSkipped, backend, s.Name)
	}
}
