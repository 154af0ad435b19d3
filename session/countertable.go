package session

// Adding a process counter: a field in Counters (or Stats), which the
// workers increment, and its row here. The sums, /stats.json, /metrics
// and the stats page follow from the row; TestSumsCoverEveryField fails
// until the row exists, and the golden files of session/stats show what
// the row adds to the outputs.

// processCounters are in /stats.json order. On the page each group shows
// its rows in this order too.
var processCounters = []CounterDesc{
	{Key: "sessions_total", at: scalar(func(s *Stats) *uint64 { return &s.Accepted })},
	{Key: "accept", Metric: "accept_total", Help: "Connections handed over by the kernel, by outcome.",
		Label: "outcome", Names: acceptOutcomeNames[:], Group: GroupAccept,
		at: array(func(s *Stats) []uint64 { return s.AcceptOutcomes[:] })},
	{Key: "accept_errors", Metric: "accept_errors_total", Help: "Accept completions with an error.",
		Group: GroupAccept, Row: "errors", at: scalar(func(s *Stats) *uint64 { return &s.AcceptErrors })},
	{at: scalar(func(s *Stats) *uint64 { return &s.Parked })}, // summed, shown nowhere yet
	{Key: "listener_pauses", Metric: "listener_pauses_total", Help: "Times a listener stopped accepting, by cause.",
		Label: "cause", Names: limitNames[:], Group: GroupPauses,
		at: array(func(s *Stats) []uint64 { return s.Paused[:] })},
	{Key: "ended", Names: reasonNames[:], Group: GroupEnded,
		at: array(func(s *Stats) []uint64 { return s.Ended[:] })},
	{Key: "connect_attempts", Metric: "connect_attempts_total", Help: "Server connects started.",
		Group: GroupConnects, Row: "attempts", at: scalar(func(s *Stats) *uint64 { return &s.ConnAttempts })},
	{Key: "connect_failures", Metric: "connect_failures_total", Help: "Server connects that failed.",
		Group: GroupConnects, Row: "failures", at: scalar(func(s *Stats) *uint64 { return &s.ConnFailures })},
	{Key: "connect_timeouts", Metric: "connect_timeouts_total", Help: "Server connects cancelled by timeout_connect.",
		Group: GroupConnects, Row: "timeouts", at: scalar(func(s *Stats) *uint64 { return &s.ConnTimeouts })},
	{Key: "retries", Metric: "retries_total", Help: "Connect retries.",
		Group: GroupConnects, Row: "retries", at: scalar(func(s *Stats) *uint64 { return &s.Retries })},
	{Key: "redispatches", Metric: "redispatches_total", Help: "Retries sent to another server.",
		Group: GroupConnects, Row: "redispatches", at: scalar(func(s *Stats) *uint64 { return &s.Redispatches })},
	{Key: "queued_total", Group: GroupOther, Row: "queued", at: scalar(func(s *Stats) *uint64 { return &s.Queued })},
	{Key: "queue_wait_seconds_total", Unit: UnitNanoseconds, Group: GroupOther, Row: "queue wait",
		at: scalar(func(s *Stats) *uint64 { return &s.QueueWaitNs })},
	{Key: "buffer_waits", Metric: "buffer_waits_total", Help: "Receives that found the buffer pool empty.",
		Group: GroupOther, Row: "buffer waits", at: scalar(func(s *Stats) *uint64 { return &s.BufWaits })},
	{Key: "socket_backoffs", Metric: "socket_backoffs_total", Help: "Server sockets delayed because the fd table was full.",
		Group: GroupOther, Row: "socket backoffs", at: scalar(func(s *Stats) *uint64 { return &s.SocketBackoffs })},
	{Key: "handed_over", Metric: "handed_over_total", Help: "Parked clients a stopping generation handed to the one that took over.",
		Group: GroupOther, Row: "handed over", at: scalar(func(s *Stats) *uint64 { return &s.HandedOver })},
	{Key: "spliced", Metric: "spliced_total", Help: "Stream directions switched to splice (long transfers).",
		Group: GroupOther, Row: "spliced", at: scalar(func(s *Stats) *uint64 { return &s.Spliced })},
	{Key: "splice_failures", Metric: "splice_failures_total", Help: "Switches to splice that found no pipe and stayed on buffers.",
		Group: GroupOther, Row: "splice failures", at: scalar(func(s *Stats) *uint64 { return &s.SpliceFailures })},
	{Key: "proxy_header_errors", Metric: "proxy_header_errors_total", Help: "PROXY protocol header failures, by reason.",
		Label: "reason", Names: proxyReasonNames[:], Group: GroupProxy,
		at: array(func(s *Stats) []uint64 { return s.ProxyErrors[:] })},
	{Key: "inspected", Metric: "inspected_total", Help: "Sessions routed on their first bytes, by what those were.",
		Label: "outcome", Names: inspectOutcomeNames[:], Group: GroupInspect,
		at: array(func(s *Stats) []uint64 { return s.Inspected[:] })},
	{Key: "late_completions", Metric: "late_completions_total", Help: "Completions for a recycled session slot, dropped.",
		Group: GroupOther, Row: "late completions", at: scalar(func(s *Stats) *uint64 { return &s.Late })},
	{Key: "server_transitions", Metric: "server_transitions_total", Help: "Servers gone UP or DOWN.",
		Group: GroupConnects, Row: "server transitions", at: scalar(func(s *Stats) *uint64 { return &s.ServerTransitions })},
	{Key: "log_dropped", Metric: "log_dropped_total", Help: "Access log lines dropped because the writer fell behind.",
		Group: GroupOther, Row: "log dropped", at: scalar(func(s *Stats) *uint64 { return &s.LogDropped })},
	{Key: "bytes_in", Unit: UnitBytes, Group: GroupOther, Row: "bytes in", at: scalar(func(s *Stats) *uint64 { return &s.BytesIn })},
	{Key: "bytes_out", Unit: UnitBytes, Group: GroupOther, Row: "bytes out", at: scalar(func(s *Stats) *uint64 { return &s.BytesOut })},
	// Per worker only, in WorkerStats.
	{at: scalar(func(s *Stats) *uint64 { return &s.Turns })},
	{at: scalar(func(s *Stats) *uint64 { return &s.Completions })},
}

var frontendCounters = []field[FrontendCounters]{
	scalar(func(c *FrontendCounters) *uint64 { return &c.Sessions }),
	array(func(c *FrontendCounters) []uint64 { return c.Ended[:] }),
	scalar(func(c *FrontendCounters) *uint64 { return &c.BytesIn }),
	scalar(func(c *FrontendCounters) *uint64 { return &c.BytesOut }),
	scalar(func(c *FrontendCounters) *uint64 { return &c.Refused }),
}

var serverCounters = []field[ServerCounters]{
	scalar(func(c *ServerCounters) *uint64 { return &c.Sessions }),
	scalar(func(c *ServerCounters) *uint64 { return &c.ConnFailures }),
	scalar(func(c *ServerCounters) *uint64 { return &c.BytesIn }),
	scalar(func(c *ServerCounters) *uint64 { return &c.BytesOut }),
	scalar(func(c *ServerCounters) *uint64 { return &c.Retries }),
	scalar(func(c *ServerCounters) *uint64 { return &c.Redispatches }),
}

// ProcessCounters describes every process counter, in /stats.json order.
// The slice is shared: do not modify it.
func ProcessCounters() []CounterDesc { return processCounters }

// Values are the counter's entries in s: one, or one per name.
func (c *CounterDesc) Values(s *Stats) []uint64 {
	if c.at.one != nil {
		return []uint64{*c.at.one(s)}
	}
	return append([]uint64(nil), c.at.many(s)...)
}

func scalar[T any](f func(*T) *uint64) field[T] { return field[T]{one: f} }
func array[T any](f func(*T) []uint64) field[T] { return field[T]{many: f} }

// add adds the field of o to that of c.
func (f field[T]) add(c, o *T) {
	if f.one != nil {
		*f.one(c) += *f.one(o)
		return
	}
	dst, src := f.many(c), f.many(o)
	for i := range dst {
		dst[i] += src[i]
	}
}

// add sums o into s, gauges excepted: they are read, not summed.
func (s *Stats) add(o *Stats) {
	for _, c := range processCounters {
		c.at.add(s, o)
	}
}

func (c *FrontendCounters) add(o *FrontendCounters) {
	for _, f := range frontendCounters {
		f.add(c, o)
	}
}

func (c *ServerCounters) add(o *ServerCounters) {
	for _, f := range serverCounters {
		f.add(c, o)
	}
}
