package session

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

// A server added to a consistent backend takes clients only for itself:
// every client that moves moves to it, and deleting it puts every client
// back where it was.
func TestConsistentKeepsClientsAcrossAddAndDelete(t *testing.T) {
	be := &Backend{Name: "app", Balance: "consistent", TimeoutConnect: time.Second, TimeoutServer: time.Second}
	for i := range 4 {
		be.Servers = append(be.Servers, &Server{Name: "s" + string(rune('1'+i)), Address: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)}), 80), Weight: 100})
	}
	p, err := New(&Config{Global: Global{Engine: "epoll", Workers: 1}, Backends: []*Backend{be}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b := p.bes[0]
	picks := func() map[netip.Addr]string {
		m := map[netip.Addr]string{}
		for i := range 2000 {
			c := netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)})
			s, _ := b.pickFree(c, nil)
			s.cur.Add(-1)
			m[c] = s.cfg.Name
		}
		return m
	}
	before := picks()
	if err := p.AddServer("app", NewServer{Name: "new", Address: netip.MustParseAddrPort("10.0.0.9:80"), Weight: 100}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetServerState("app", "new", AdminReady); err != nil {
		t.Fatal(err)
	}
	after := picks()
	moved := 0
	for c, s := range after {
		if s != before[c] {
			moved++
			if s != "new" {
				t.Fatalf("client %v moved from %s to %s, not to the added server", c, before[c], s)
			}
		}
	}
	if moved < 200 || moved > 700 {
		t.Errorf("%d of 2000 clients moved to the fifth server, want about 400", moved)
	}
	if err := p.SetServerState("app", "new", AdminMaint); err != nil {
		t.Fatal(err)
	}
	if err := p.DelServer("app", "new"); err != nil {
		t.Fatal(err)
	}
	for c, s := range picks() {
		if s != before[c] {
			t.Fatalf("after the delete client %v is on %s, was on %s", c, s, before[c])
		}
	}
}
