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
	idx     int // in Proxy.bes and worker.queues
	servers []*server
	rr      atomic.Uint64 // round-robin position, shared so workers alternate together
	queued  atomic.Int64  // sessions waiting for a slot, all workers
}

// server is a Server with its sockaddr built once; connects read it
// concurrently and never write it.
type server struct {
	cfg *Server
	be  *backend
	sa  ring.Sockaddr
	cur atomic.Int64 // slots held: sessions assigned to it, all workers
}

// take reserves a slot on s against its maxconn.
func (s *server) take() bool { return reserve(&s.cur, int64(s.cfg.MaxConn)) }

func newBackend(cfg *Backend, idx int) *backend {
	b := &backend{cfg: cfg, idx: idx}
	for _, s := range cfg.Servers {
		srv := &server{cfg: s, be: b}
		srv.sa.Set(s.Address)
		b.servers = append(b.servers, srv)
	}
	return b
}

// pickFree picks a server by round robin among those with a free slot
// and reserves the slot, or returns nil when all are full. avoid, when
// set and another server can take the session, is skipped: that is how a
// redispatch leaves a failing server.
func (b *backend) pickFree(avoid *server) *server {
	n := uint64(len(b.servers))
	for i := uint64(0); i < n; i++ {
		s := b.servers[(b.rr.Add(1)-1)%n]
		if s == avoid && n > 1 {
			continue
		}
		if s.take() {
			return s
		}
	}
	if avoid != nil && n > 1 && avoid.take() {
		return avoid // the only server with room
	}
	return nil
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
