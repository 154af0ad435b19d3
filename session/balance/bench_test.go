package balance

import (
	"net/netip"
	"testing"
)

// benchBalancer is 8 servers of mixed weights, loads from atomic counters.
func benchBalancer(b *testing.B, algo string) (Balancer, []netip.Addr) {
	c := make(counter, 8)
	for i := range c {
		c[i].Store(int64(i * 3))
	}
	bal := mustNew(b, algo, servers(100, 100, 100, 100, 50, 50, 25, 25), c.load)
	clients := make([]netip.Addr, 1024)
	for k := range clients {
		clients[k] = client(k)
	}
	return bal, clients
}

func BenchmarkPick(b *testing.B) {
	for _, algo := range Algorithms {
		b.Run(algo, func(b *testing.B) {
			bal, clients := benchBalancer(b, algo)
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				bal.Pick(clients[k&1023], -1)
				k++
			}
		})
	}
}

// BenchmarkPickParallel is every worker picking at once: the cost of the
// shared state (roundrobin's mutex, the other algorithms' atomics).
func BenchmarkPickParallel(b *testing.B) {
	for _, algo := range Algorithms {
		b.Run(algo, func(b *testing.B) {
			bal, clients := benchBalancer(b, algo)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				k := 0
				for pb.Next() {
					bal.Pick(clients[k&1023], -1)
					k++
				}
			})
		})
	}
}
