// Package session owns ringproxy's TCP proxying: listeners and their
// accept-time checks, sessions with their two stream interfaces (si[0] the
// client, si[1] the server) and two channels (request: si[0] → si[1];
// response: si[1] → si[0]), server selection and connect retries, timeouts,
// and the per-worker loop that ties them to an engine.
//
// Each worker is one goroutine locked to its OS thread; everything a worker
// owns (sessions, listeners, timers, counters) is touched only from it, so
// the data path takes no lock. Process-wide limits (global and frontend
// maxconn) and round robin are shared atomics, touched once per session.
//
// This package never issues I/O syscalls itself: it asks its ring.Engine,
// and the ring package's socket helpers for setup.
package session
