// Package session owns ringproxy's TCP proxying: listeners and their
// accept-time checks, sessions with their two stream interfaces (si[0] the
// client, si[1] the server) and two channels (request: si[0] → si[1];
// response: si[1] → si[0]), server selection and connect retries, timeouts,
// and the per-worker loop that ties them to an engine.
//
// Each worker is one goroutine locked to its OS thread; everything a worker
// owns (sessions, listeners, timers, counters) is touched only from it, so
// the data path takes no lock and allocates nothing. Process-wide limits
// (global and frontend maxconn) and round robin are shared atomics,
// touched once per session.
//
// This package never issues syscalls itself: it asks its ring.Engine for
// I/O, and the ring package's socket helpers for setup.
//
// # A session's life, in the code's names
//
// The loop. A worker runs ring.Run: Complete hands it each batch of
// completions, which complete routes by the op in their user data, and
// Turn does the per-pass work: signals from other goroutines, buffer
// waiters, queues, timers, listeners (worker_loop.go).
//
// Accept. A listener's accept completion comes to onAccept, and accepted
// runs admit (admit.go): HAProxy's event_accept checks in DESIGN.md's
// order, reserveLimits (rate, frontend and global slots) then screen (fd
// ceiling, socket options, source checks, a session from the arena). A
// limit that stands parks the fd and moves the listener to liFull or
// liLimited; resume serves it once the limit passes (listener.go; the
// diagram is in listener_types.go).
//
// Session. startSession (session.go) takes a Session from the slab and
// reads a PROXY header first with accept_proxy (proxyhdr.go);
// pickBackend (inspect.go) takes the frontend's backend, or routes: at
// once on the client's address, or in stInspect on its first bytes
// (protocol, SNI, ALPN), which stay queued to be forwarded; assign
// (queue.go) arms the client's receive and picks a server through the
// backend's balancer, or queues the session until a server slot frees;
// connect (connect.go) opens the server socket, and connectFailed retries
// and redispatches. The session states are drawn in session_types.go.
//
// Channels. A side's receive (armRecv) lands in a pool buffer; onRecv
// pushes that buffer on the channel the side produces (s.req for the
// client, s.rep for the server) and flush sends the same buffer to the
// other side; onSend pops it and gives it back to the pool. A full
// channel stops its producer; a FIN is forwarded as a shutdown once the
// channel is empty (onShutdown). Long streams switch to splice
// (splice.go). Each session has one timer (timer.go): deadline says which
// timeout runs and what expire then does.
//
// Close. closeSession records the Reason, moves the session to stClosing
// and cancels what is in flight; finalize, once the last completion is
// in, closes the fds (with a reset when the end was not clean), writes the
// access line (accesslog.go), gives back the slots and returns the
// Session to the slab.
//
// Around them: Proxy starts (proxy_start.go), binds (proxy_bind.go), and
// stops (proxy_stop.go) a generation of workers, and reload.go hands
// sockets and parked clients to the next one; health/ runs the checks;
// counters.go and snapshot.go hold what stats/ and admin/ show.
package session
