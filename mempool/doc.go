// Package mempool owns ringproxy's fixed arenas: the session slab and the
// buffer arena, both sized once at start from the config.
//
// Nothing here allocates after construction, and exhaustion is reported to
// the caller (ok == false), never by a panic: running out of sessions or
// buffers is an ordinary event the accept path and the receive path handle
// by pausing. This package never does I/O; the engine registers the arena's
// memory with the kernel.
package mempool
