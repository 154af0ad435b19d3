package deploy

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"ringproxy/cmd/ringproxy/config"
	"ringproxy/session"
	"ringproxy/session/health"
	"ringproxy/session/testbed"
)

// The health check recipes of the examples work: each example is read by
// the real loader with only its addresses replaced by loopback stand-ins,
// and its check is run against them as the checker would, through a
// failover.

// loadExample reads an example with each old string replaced by its new
// one; an old string the example lacks fails the test, so the example
// cannot drift away from what is tested here.
func loadExample(t *testing.T, name string, replace ...string) *session.Config {
	t.Helper()
	b, err := os.ReadFile("examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s no longer has %q", name, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	c, err := config.Parse(name, []byte(s))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return c
}

func backendNamed(t *testing.T, c *session.Config, name string) *session.Backend {
	t.Helper()
	for _, b := range c.Backends {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no backend %s", name)
	return nil
}

// probe runs b's check once against each server, as its monitor would,
// and returns each server's result: "" for a pass, else the reason.
func probe(b *session.Backend) []string {
	spec := session.HealthSpec(b.Check)
	out := make([]string, len(b.Servers))
	for i, s := range b.Servers {
		if err := health.Probe(context.Background(), spec, session.CheckAddr(b.Check, s)); err != nil {
			out[i] = err.Error()
		}
	}
	return out
}

// wantResults compares probe's results, each a prefix of the reason.
func wantResults(t *testing.T, when string, got []string, want ...string) {
	t.Helper()
	for i := range want {
		if want[i] == "" && got[i] != "" || want[i] != "" && !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("%s: server %d: %q, want %q", when, i+1, got[i], want[i])
		}
	}
}

// redis.toml: only the master passes, the password is asked first, and
// the roles follow a failover.
func TestExampleRedisCheckFindsTheMaster(t *testing.T) {
	r1 := testbed.StartRedis(t, "redis1", "changeme", true)
	r2 := testbed.StartRedis(t, "redis2", "changeme", false)
	c := loadExample(t, "redis.toml", "10.0.1.11:6379", r1.Addr().String(), "10.0.1.12:6379", r2.Addr().String())
	b := backendNamed(t, c, "redis")
	replica := `step 6 expect: timeout after 200ms, got "$581\r\n# Replication\r\nrole:slave`
	wantResults(t, "redis1 master", probe(b), "", replica)
	r1.SetMaster(false)
	r2.SetMaster(true)
	wantResults(t, "after the failover", probe(b), replica, "")

	wrongPassword := testbed.StartRedis(t, "redis3", "another", true)
	c = loadExample(t, "redis.toml", "10.0.1.11:6379", wrongPassword.Addr().String(), "10.0.1.12:6379", r2.Addr().String())
	wantResults(t, "wrong password", probe(backendNamed(t, c, "redis")),
		`step 2 expect: timeout after 500ms, got "-WRONGPASS invalid username-password pair or user is disabled.\r\n", want "+OK"`, "")
}

// postgres.toml: an SSLRequest answered S or N passes; a server that
// accepts but does not speak PostgreSQL fails, where a connect would pass.
func TestExamplePostgresSSLRequest(t *testing.T) {
	tls := testbed.StartPostgres(t, 'S')
	plain := testbed.StartPostgres(t, 'N')
	c := loadExample(t, "postgres.toml", "10.0.2.11:5432", tls.Addr().String(), "10.0.2.12:5432", plain.Addr().String())
	b := backendNamed(t, c, "replicas")
	wantResults(t, "S and N", probe(b), "", "")

	notPostgres := testbed.StartRedis(t, "r", "", true)
	c = loadExample(t, "postgres.toml", "10.0.2.11:5432", notPostgres.Addr().String(), "10.0.2.12:5432", plain.Addr().String())
	wantResults(t, "a Redis on the port", probe(backendNamed(t, c, "replicas")), `step 2 expect: timeout after 1s, got "", want regexp "^[SN]"`, "")
}

// patroni.toml: every node's checks go to its REST port, traffic to
// 5432; /primary passes on the leader only, /replica elsewhere, and both
// follow a switchover.
func TestExamplePatroniChecksTheLeader(t *testing.T) {
	// Patroni's port is the same on every node: each stand-in node has
	// its own loopback address, the first one's kernel-chosen port.
	var nodes []*testbed.Patroni
	for i, ip := range []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"} {
		port := "0"
		if i > 0 {
			port = fmt.Sprint(nodes[0].Addr().Port())
		}
		nodes = append(nodes, testbed.StartPatroniOn(t, ip+":"+port, i == 1))
	}
	port := fmt.Sprint(nodes[0].Addr().Port())
	c := loadExample(t, "patroni.toml", "port     = 8008", "port = "+port,
		"10.0.2.11:5432", "127.0.0.11:5432", "10.0.2.12:5432", "127.0.0.12:5432", "10.0.2.13:5432", "127.0.0.13:5432")
	primary, replicas := backendNamed(t, c, "primary"), backendNamed(t, c, "replicas")
	for _, s := range primary.Servers {
		if got, want := session.CheckAddr(primary.Check, s), netip.AddrPortFrom(s.Address.Addr(), nodes[0].Addr().Port()); got != want || s.Address.Port() != 5432 {
			t.Fatalf("server %s at %v checked at %v, want %v", s.Name, s.Address, got, want)
		}
	}
	const refused = "http status 503, want 200"
	wantResults(t, "pg2 leads: primary", probe(primary), refused, "", refused)
	wantResults(t, "pg2 leads: replicas", probe(replicas), "", refused, "")

	nodes[1].SetLeader(false)
	nodes[2].SetLeader(true)
	wantResults(t, "pg3 leads: primary", probe(primary), refused, refused, "")
	wantResults(t, "pg3 leads: replicas", probe(replicas), "", "", refused)
	for i, n := range nodes {
		if n.Hits("/primary") != 2 || n.Hits("/replica") != 2 {
			t.Errorf("node %d: %d GET /primary and %d GET /replica, want 2 each", i+1, n.Hits("/primary"), n.Hits("/replica"))
		}
	}
}
