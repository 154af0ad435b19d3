// Package testbed provides loopback servers and clients for ringproxy's
// integration tests; it is never used by the product binary.
//
// Backends (StartEcho, StartNamed, StartSilent, StartSink, ...) listen on
// 127.0.0.1 with a kernel-chosen port, count accepted and active connections,
// and stop themselves through t.Cleanup: the listener and every open
// connection are closed and all goroutines are waited for, so tests do not
// leak goroutines or sockets.
//
// Clients (IntegrityRun, IntegrityMany, DialExpectClose, ReadLine,
// ReceiveThenSend) talk to a backend directly or through a proxy and report
// what they observed with errors that name the operation and address.
package testbed
