// Package ring owns the kernel I/O engines and the per-core loop.
//
// An Engine is a proactor: callers queue requests (accept, receive, send,
// connect, shutdown, cancel, close), each tagged with a UserData that packs
// (op, session slot, generation), and later read Completions carrying that
// tag. The io_uring engine maps requests one to one onto SQEs; receives take
// their buffer from a provided buffer ring over a mempool.Arena, so the
// memory a receive filled is the memory the peer's send reads.
//
// This package must never know about sessions, frontends or backends: it
// moves bytes and reports results. It wraps giouring but fills every SQE
// itself (see ../shared/GIOURING.md for the helpers that are broken), and it
// touches a ring only from the goroutine that created it.
package ring
