package session_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"ringproxy/session/testbed"
)

// Concurrent Stats calls each get the real counters, not a timeout's
// zeros or another caller's stale copy.
func TestConcurrentStats(t *testing.T) {
	forEngines(t, func(t *testing.T, eng string) {
		echo := testbed.StartEcho(t)
		cfg := testConfig(eng, echo.Addr())
		cfg.Global.Workers = 1
		p, addr := startProxy(t, cfg)
		if _, err := testbed.IntegrityRun(context.Background(), addr, 1<<10, 1); err != nil {
			t.Fatal(err)
		}
		for round := 0; round < 20; round++ {
			var wg sync.WaitGroup
			res := make([]uint64, 4)
			took := make([]time.Duration, 4)
			for i := range res {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t0 := time.Now()
					res[i] = p.Stats().Accepted
					took[i] = time.Since(t0)
				}()
			}
			wg.Wait()
			for i := range res {
				if res[i] != 1 {
					t.Fatalf("round %d: concurrent Stats() call %d saw Accepted=%d after %v, want 1", round, i, res[i], took[i])
				}
			}
		}
	})
}
