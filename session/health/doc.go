// Package health owns the health state of one backend's servers: active
// checks (tcp, with or without a sequence of send and expect steps; http;
// expect) run by one goroutine per server, possibly against another
// endpoint than the server's traffic address, passive
// observation of connect results on live traffic, and the rise/fall state
// machine that turns both into "server is UP / DOWN" events.
//
// It reports state changes through a callback; the proxy decides what a
// change means for its balancer. It never touches the data path's sockets
// (checks open their own connections) and never blocks a caller of Observe:
// the worker loops report connect results there, so Observe is a few atomic
// operations and a non-blocking channel send, and all transitions, message
// formatting and callbacks happen on the server's own checker goroutine.
//
// # State machine
//
// Every server starts UP, like HAProxy: a proxy restart must not drop all
// traffic while checks warm up. The first check runs at a random offset
// within min(interval, 1s), so a dead server is marked DOWN after fall
// checks, the later ones at the fast interval.
//
//   - A server goes DOWN after fall consecutive failed active checks, or
//     after fall consecutive connect failures on live traffic (Observe).
//   - It goes UP only after rise consecutive successful active checks;
//     live traffic never brings a server up (a DOWN server gets none).
//   - Active and passive failures are separate streaks: a successful live
//     connect says nothing about an http check, so it must not reset the
//     active streak, and it does reset the passive one.
//   - Checks run every interval ±10%. While a server is in transition (UP
//     with 1..fall-1 consecutive failures, active or passive, or DOWN with
//     1..rise-1 consecutive successes) they run at the fast interval,
//     interval/4 but at least 100ms (never more than interval), like
//     HAProxy's fastinter.
//
// # Agent and observe
//
// An agent check (AgentSpec, HAProxy's agent-check) runs on a goroutine of
// its own per server, beside the regular check or alone (Kind NoCheck): its
// down, stopped or fail take the server DOWN at once, its up lets it come
// back, and the server is UP only while the regular check and the agent
// agree. Its admin, weight and maxconn words go to AgentSpec.Apply. An
// agent that cannot be reached changes nothing.
//
// ObserveSpec is HAProxy's observe layer4: ErrorLimit consecutive connect
// failures on live traffic act as OnError says on the regular check's
// state; with no regular check the server is DOWN for Downtime (nginx's
// max_fails and fail_timeout). Without ObserveSpec, with a regular check,
// fall consecutive connect failures take a server DOWN as described above.
//
// A Monitor exists only for backends with checks configured; without one,
// servers are always usable. Observe on a nil *Monitor does nothing, so the
// data path may call it unconditionally.
package health
