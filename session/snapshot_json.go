package session

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// processHead is the JSON of ProcessStats before its counters.
type processHead struct {
	Engine      string `json:"engine"`
	Workers     int    `json:"workers"`
	MaxConn     int    `json:"maxconn"`
	CurSessions int64  `json:"current_sessions"`
	MaxSessions int64  `json:"max_sessions"`
	CurQueue    int64  `json:"current_queue"`
	SessionRate Rate   `json:"session_rate"`
	ConnRate    Rate   `json:"connection_rate"`
}

// MarshalJSON writes the head, then every counter that has a key, in
// the order of ProcessCounters.
func (p ProcessStats) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(processHead{p.Engine, p.Workers, p.MaxConn, p.CurConns, p.MaxConns, p.CurQueue, p.SessionRate, p.ConnRate})
	if err != nil {
		return nil, err
	}
	b = b[:len(b)-1] // the counters go before the closing brace
	for i := range processCounters {
		c := &processCounters[i]
		if c.Key == "" {
			continue
		}
		v, err := json.Marshal(c.jsonValue(&p.Stats))
		if err != nil {
			return nil, err
		}
		b = fmt.Appendf(b, ",%q:%s", c.Key, v)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *ProcessStats) UnmarshalJSON(b []byte) error {
	var head processHead
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	*p = ProcessStats{Engine: head.Engine, Workers: head.Workers, MaxConn: head.MaxConn}
	p.CurConns, p.MaxConns, p.CurQueue = head.CurSessions, head.MaxSessions, head.CurQueue
	p.SessionRate, p.ConnRate = head.SessionRate, head.ConnRate
	for i := range processCounters {
		c := &processCounters[i]
		if raw, ok := fields[c.Key]; ok && c.Key != "" {
			if err := c.setJSON(&p.Stats, raw); err != nil {
				return fmt.Errorf("process.%s: %w", c.Key, err)
			}
		}
	}
	return nil
}

// jsonValue is the counter as /stats.json shows it: a number (seconds
// for a time) or, for an array, an object keyed by entry name.
func (c *CounterDesc) jsonValue(s *Stats) any {
	v := c.Values(s)
	switch {
	case c.Names != nil:
		m := make(map[string]uint64, len(v))
		for i, n := range v {
			m[c.Names[i]] = n
		}
		return m
	case c.Unit == UnitNanoseconds:
		return time.Duration(v[0]).Seconds()
	}
	return v[0]
}

func (c *CounterDesc) setJSON(s *Stats, raw json.RawMessage) error {
	switch {
	case c.Names != nil:
		var m map[string]uint64
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		v := c.at.many(s)
		for i, n := range c.Names {
			v[i] = m[n]
		}
		return nil
	case c.Unit == UnitNanoseconds:
		var sec float64
		if err := json.Unmarshal(raw, &sec); err != nil {
			return err
		}
		*c.at.one(s) = uint64(math.Round(sec * 1e9))
		return nil
	}
	return json.Unmarshal(raw, c.at.one(s))
}

// Seconds is a duration that /stats.json writes in seconds.
type Seconds time.Duration

// MarshalJSON writes s as a number of seconds.
func (s Seconds) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(s).Seconds()) }

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var sec float64
	if err := json.Unmarshal(b, &sec); err != nil {
		return err
	}
	*s = Seconds(math.Round(sec * 1e9))
	return nil
}
