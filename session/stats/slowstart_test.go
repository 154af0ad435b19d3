package stats

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ringproxy/session"
)

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A warming server: the page shows its effective weight and how far its
// ramp is; /stats.json gives the effective weight and a slow_start
// object with the weight it ramps to. A server at full weight has none.
func TestSlowStartShown(t *testing.T) {
	snap := fakeSnapshot()
	sv := &snap.Backends[0].Servers[0]
	sv.Up, sv.Disabled, sv.Admin = true, false, "ready"
	sv.Weight, sv.UserWeight = 32, 100
	sv.SlowStart = &session.SlowStart{Since: snap.Time.Add(-3 * time.Second), Window: session.Seconds(10 * time.Second),
		Throttle: 31, Weight: 100, MaxConn: 6}
	srv := httptest.NewServer(Handler(fakeSource{snap}))
	defer srv.Close()

	page := getBody(t, srv.URL+"/")
	if !strings.Contains(page, `<td class="n">32<div class="since" title="slow start: 31% of weight 100`) || !strings.Contains(page, ">warming 31%</div>") {
		t.Errorf("the page does not show %s warming up at weight 32, 31%%:\n%s", sv.Name, page)
	}
	if n := strings.Count(page, "warming "); n != 1 {
		t.Errorf("%d servers shown warming up, want 1", n)
	}

	var got struct {
		Backends []struct {
			Servers []struct {
				Weight    int             `json:"weight"`
				SlowStart json.RawMessage `json:"slow_start"`
			} `json:"servers"`
		} `json:"backends"`
	}
	if err := json.Unmarshal([]byte(getBody(t, srv.URL+"/stats.json")), &got); err != nil {
		t.Fatal(err)
	}
	s0, s1 := got.Backends[0].Servers[0], got.Backends[0].Servers[1]
	want := `{"since":"2025-03-14T15:09:23Z","window_seconds":10,"throttle_percent":31,"weight":100,"maxconn":6}`
	var compact bytes.Buffer
	json.Compact(&compact, s0.SlowStart)
	if s0.Weight != 32 || compact.String() != want {
		t.Errorf("/stats.json: weight %d, slow_start %s; want 32, %s", s0.Weight, s0.SlowStart, want)
	}
	if s1.SlowStart != nil {
		t.Errorf("/stats.json: a server at full weight has slow_start %s", s1.SlowStart)
	}
}
