package balance

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
)

func TestNewRejects(t *testing.T) {
	dup := servers(1, 1)
	dup[1].Addr = dup[0].Addr
	noAddr := servers(1, 1)
	noAddr[1].Addr = netip.AddrPort{}
	maxc := servers(1)
	maxc[0].MaxConn = -1
	for _, tc := range []struct {
		algo    string
		servers []Server
		want    string
	}{
		{"fastest", servers(1), `unknown algorithm "fastest"`},
		{"roundrobin", servers(1, 257), "weight 257 out of 0..256"},
		{"leastconn", servers(-1), "weight -1 out of 0..256"},
		{"first", maxc, "maxconn -1 is negative"},
		{"consistent", dup, "share address 10.0.0.1:8080"},
		{"consistent", noAddr, "has no address to hash"},
	} {
		_, err := New(tc.algo, tc.servers, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q): err %v, want %q", tc.algo, err, tc.want)
		}
	}
	// Duplicate addresses only matter to the algorithm that hashes them.
	if _, err := New("roundrobin", dup, nil); err != nil {
		t.Errorf("roundrobin with duplicate addresses: %v", err)
	}
}

func TestAlgorithmsAllBuild(t *testing.T) {
	for _, algo := range Algorithms {
		if _, err := New(algo, servers(1, 2), nil); err != nil {
			t.Errorf("%s: %v", algo, err)
		}
	}
}

func TestNothingUsable(t *testing.T) {
	for _, algo := range Algorithms {
		t.Run(algo, func(t *testing.T) {
			if i, ok := mustNew(t, algo, nil, nil).Pick(anyClient, -1); ok {
				t.Errorf("no servers: picked %d", i)
			}
			if i, ok := mustNew(t, algo, servers(0, 0), nil).Pick(anyClient, -1); ok {
				t.Errorf("all weight 0: picked %d", i)
			}
			s := servers(1, 1)
			s[1].Backup = true
			b := mustNew(t, algo, s, nil)
			b.SetUsable(0, false)
			b.SetUsable(1, false)
			if i, ok := b.Pick(anyClient, 0); ok {
				t.Errorf("all down: picked %d", i)
			}
			b.SetUsable(1, true)
			if i, ok := b.Pick(anyClient, -1); !ok || i != 1 {
				t.Errorf("backup back up: got %d, %v; want 1", i, ok)
			}
		})
	}
}

func TestWeightZeroNeverPicked(t *testing.T) {
	for _, algo := range Algorithms {
		t.Run(algo, func(t *testing.T) {
			c := make(counter, 3)
			s := servers(10, 0, 10)
			s[0].MaxConn, s[2].MaxConn = 100, 100 // so "first" moves on
			got := pickN(t, mustNew(t, algo, s, c.load), 3, 3000, c)
			if got[1] != 0 || got[0] == 0 || got[2] == 0 {
				t.Errorf("counts %v: want none on the weight-0 server, some on each other", got)
			}
		})
	}
}

// TestBackups: backups only when no primary is usable, and then all of them
// share the load ("first" fills them in order).
func TestBackups(t *testing.T) {
	for _, algo := range Algorithms {
		t.Run(algo, func(t *testing.T) {
			s := servers(1, 1, 1, 1, 0)
			s[2].Backup, s[3].Backup, s[4].Backup = true, true, true
			for i := range s {
				s[i].MaxConn = 200
			}
			c := make(counter, len(s))
			b := mustNew(t, algo, s, c.load)
			const n = 400
			if got := pickN(t, b, len(s), n, c); got[2]+got[3]+got[4] != 0 {
				t.Errorf("primaries up: %v", got)
			}
			b.SetUsable(0, false)
			if got := pickN(t, b, len(s), n, nil); got[1] != n {
				t.Errorf("one primary up: %v, want all on 1", got)
			}
			b.SetUsable(1, false)
			for i := range c {
				c[i].Store(0)
			}
			got := pickN(t, b, len(s), n, c)
			if got[0]+got[1]+got[4] != 0 || got[2] < n/4 || got[3] < n/4 {
				t.Errorf("primaries down: %v, want the two weighted backups sharing", got)
			}
			if algo == "first" && got[2] != 200 {
				t.Errorf("first: %v, want backup 2 filled (200) before backup 3", got)
			}
			b.SetUsable(1, true)
			if got := pickN(t, b, len(s), n, nil); got[1] != n {
				t.Errorf("primary back: %v, want all on 1", got)
			}
		})
	}
}

func TestAvoid(t *testing.T) {
	for _, algo := range Algorithms {
		t.Run(algo, func(t *testing.T) {
			s := servers(100, 50, 25)
			b := mustNew(t, algo, s, nil)
			for k := range 1000 {
				if i, ok := b.Pick(client(k), 0); !ok || i == 0 {
					t.Fatalf("pick %d with avoid 0: got %d, %v", k, i, ok)
				}
			}
			// Harmless values: none, out of range, a down server.
			b.SetUsable(2, false)
			for _, avoid := range []int{-1, 99, 2} {
				if i, ok := b.Pick(anyClient, avoid); !ok || i == 2 {
					t.Errorf("avoid %d: got %d, %v", avoid, i, ok)
				}
			}
			// The only usable server is returned even when avoided.
			b.SetUsable(1, false)
			for k := range 10 {
				if i, ok := b.Pick(client(k), 0); !ok || i != 0 {
					t.Fatalf("avoid the only server: got %d, %v; want 0", i, ok)
				}
			}
		})
	}
}

// TestPickAllocs: Pick allocates nothing, whatever the algorithm or avoid.
func TestPickAllocs(t *testing.T) {
	c := make(counter, 8)
	for _, algo := range Algorithms {
		b := mustNew(t, algo, servers(100, 100, 50, 50, 25, 25, 10, 1), c.load)
		k := 0
		allocs := testing.AllocsPerRun(1000, func() {
			k++
			b.Pick(client(k), k%9-1)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Pick, want 0", algo, allocs)
		}
	}
}

// TestConcurrentPicks: 8 workers × 10,000 picks per algorithm (run it with
// -race). Round robin's state is global, so its shares stay exact.
func TestConcurrentPicks(t *testing.T) {
	const workers, picks = 8, 10000
	weights := []int{100, 50, 25, 25} // 80,000 picks = 400 whole cycles of 200
	for _, algo := range Algorithms {
		t.Run(algo, func(t *testing.T) {
			s := servers(weights...)
			for i := range s {
				s[i].MaxConn = 30000 // "first" spills over to the next servers
			}
			c := make(counter, len(s))
			b := mustNew(t, algo, s, c.load)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for k := range picks {
						i, ok := b.Pick(client(w*picks+k), -1)
						if !ok {
							t.Errorf("worker %d pick %d: nothing usable", w, k)
							return
						}
						c[i].Add(1)
					}
				})
			}
			wg.Wait()
			got := make([]int64, len(c))
			for i := range c {
				got[i] = c[i].Load()
			}
			t.Logf("counts %v", got)
			if algo == "roundrobin" {
				for i, w := range weights {
					if want := int64(workers * picks * w / 200); got[i] != want {
						t.Errorf("roundrobin server %d: %d picks, want exactly %d", i, got[i], want)
					}
				}
			}
		})
	}
}

// TestConcurrentSetUsable races health changes against picks (for -race):
// server 0 stays up, so every pick succeeds and never lands on a server
// that is down for the whole test.
func TestConcurrentSetUsable(t *testing.T) {
	for _, algo := range Algorithms {
		t.Run(algo, func(t *testing.T) {
			s := servers(10, 10, 10, 10)
			s[3].Backup = true
			b := mustNew(t, algo, s, nil)
			b.SetUsable(2, false)
			stop := make(chan struct{})
			var toggler, pickers sync.WaitGroup
			toggler.Go(func() {
				for up := false; ; up = !up {
					select {
					case <-stop:
						return
					default:
					}
					b.SetUsable(1, up)
				}
			})
			for w := range 4 {
				pickers.Go(func() {
					for k := range 2000 {
						i, ok := b.Pick(client(k), w-1)
						if !ok || i == 2 || i == 3 {
							t.Errorf("got %d, %v", i, ok)
							return
						}
					}
				})
			}
			pickers.Wait()
			close(stop)
			toggler.Wait()
		})
	}
}
