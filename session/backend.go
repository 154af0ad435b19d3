package session

import (
	"sync/atomic"

	"ringproxy/ring"
)

// frontend is a Frontend's shared runtime state: workers reserve session
// slots against its maxconn.
type frontend struct {
	cfg  *Frontend
	cur  atomic.Int64 // sessions open now, all workers
	opts ring.SockOpts
	be   *backend
}

// backend is a Backend's shared runtime state.
type backend struct {
	cfg     *Backend
	servers []*server
	rr      atomic.Uint64 // round-robin position, shared so workers alternate together
}

// server is a Server with its sockaddr built once; connects read it
// concurrently and never write it.
type server struct {
	cfg *Server
	be  *backend
	sa  ring.Sockaddr
	cur atomic.Int64 // sessions connected or connecting now
}

func newBackend(cfg *Backend) *backend {
	b := &backend{cfg: cfg}
	for _, s := range cfg.Servers {
		srv := &server{cfg: s, be: b}
		srv.sa.Set(s.Address)
		b.servers = append(b.servers, srv)
	}
	return b
}

// next picks a server by round robin. avoid, when set and another server
// exists, is skipped: that is how a redispatch leaves a failing server.
func (b *backend) next(avoid *server) *server {
	n := uint64(len(b.servers))
	for i := uint64(0); i < n; i++ {
		s := b.servers[(b.rr.Add(1)-1)%n]
		if s != avoid || n == 1 {
			return s
		}
	}
	return b.servers[0]
}

// reserve takes a slot against limit in cur, or reports it full.
// limit <= 0 means no limit.
func reserve(cur *atomic.Int64, limit int64) bool {
	if limit <= 0 {
		cur.Add(1)
		return true
	}
	for {
		v := cur.Load()
		if v >= limit {
			return false
		}
		if cur.CompareAndSwap(v, v+1) {
			return true
		}
	}
}
