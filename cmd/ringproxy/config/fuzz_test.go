package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"ringproxy/session"
	"ringproxy/session/balance"
	"ringproxy/session/route"
)

// FuzzParse checks that no input panics Parse, that every failure is a
// well-formed report naming the file, and that every success is a config
// the data path can run without re-checking anything.
func FuzzParse(f *testing.F) {
	f.Add(Default())
	f.Add([]byte(routesConfig))
	for _, tc := range badConfigs {
		f.Add([]byte(tc.toml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			checkReport(t, c, err)
			return
		}
		if err := checkInvariants(c); err != nil {
			t.Fatalf("accepted config breaks an invariant: %v\ninput:\n%s", err, data)
		}
		_ = Summary(c)
	})
}

func checkReport(t *testing.T, c *session.Config, err error) {
	if c != nil {
		t.Fatal("config returned along with an error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not an *Error: %v", err, err)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, "fuzz.toml:") {
			t.Fatalf("report line does not name the file: %q", line)
		}
	}
}

func checkInvariants(c *session.Config) error {
	g := c.Global
	switch {
	case g.Engine != "uring":
		return fmt.Errorf("engine %q", g.Engine)
	case g.Workers < 1, g.MaxConn < 1, g.MaxSock < 0, g.MaxAccept < 1 || g.MaxAccept > 1024:
		return fmt.Errorf("global %+v", g)
	case g.BufSize < 1<<10 || g.BufSize > 1<<20:
		return fmt.Errorf("bufsize %d", g.BufSize)
	case g.Buffers != 0 && (g.Buffers < 16 || g.Buffers > 32768 || g.Buffers&(g.Buffers-1) != 0):
		return fmt.Errorf("buffers %d", g.Buffers)
	case g.Grace < 0:
		return fmt.Errorf("grace %v", g.Grace)
	}
	if len(c.Frontends) == 0 {
		return errors.New("no frontends")
	}
	backends := map[*session.Backend]bool{}
	for _, b := range c.Backends {
		if err := checkBackend(b); err != nil {
			return err
		}
		backends[b] = true
	}
	return checkFrontends(c.Frontends, backends)
}

func checkFrontends(fs []*session.Frontend, backends map[*session.Backend]bool) error {
	names := map[string]bool{}
	for _, f := range fs {
		switch {
		case !validName(f.Name) || names[f.Name]:
			return fmt.Errorf("frontend name %q", f.Name)
		case len(f.Binds) == 0:
			return fmt.Errorf("frontend %s: no binds", f.Name)
		case f.Backend == nil && (f.BackendName != "" || len(f.Routes) == 0):
			return fmt.Errorf("frontend %s: no backend and no routes", f.Name)
		case f.Backend != nil && (!backends[f.Backend] || f.Backend.Name != f.BackendName):
			return fmt.Errorf("frontend %s: backend not resolved", f.Name)
		case f.TimeoutClient <= 0 || f.MaxConn < 0:
			return fmt.Errorf("frontend %+v", f)
		}
		if err := checkRoutes(f, backends); err != nil {
			return fmt.Errorf("frontend %s: %v", f.Name, err)
		}
		for _, a := range f.Binds {
			if !a.IsValid() {
				return fmt.Errorf("frontend %s: bind %v", f.Name, a)
			}
		}
		names[f.Name] = true
	}
	return nil
}

// checkRoutes: every route can match some client and has a backend; the
// inspection settings are set exactly when a route needs them.
func checkRoutes(f *session.Frontend, backends map[*session.Backend]bool) error {
	switch {
	case f.Inspects() != (f.InspectTimeout > 0):
		return fmt.Errorf("inspect_timeout %v with inspecting routes %v", f.InspectTimeout, f.Inspects())
	case f.InspectTimeout > f.TimeoutClient:
		return fmt.Errorf("inspect_timeout %v above timeout_client %v", f.InspectTimeout, f.TimeoutClient)
	case f.BadHelloClose && !f.NeedsHello():
		return errors.New("on_bad_hello close without a route reading the ClientHello")
	}
	for j, r := range f.Routes {
		switch {
		case r.Backend == nil || !backends[r.Backend] || r.Backend.Name != r.BackendName:
			return fmt.Errorf("route[%d]: backend not resolved", j)
		case r.NeedsHello() && r.Protocol != route.Any && r.Protocol != route.TLS:
			return fmt.Errorf("route[%d]: protocol %s with sni or alpn", j, r.Protocol)
		case r.Protocol != route.Any && r.Protocol != route.TLS && r.Protocol != route.HTTP &&
			r.Protocol != route.SSH && r.Protocol != route.None:
			return fmt.Errorf("route[%d]: protocol %s", j, r.Protocol)
		}
		for _, p := range r.SNI {
			if q, err := route.Pattern(p); err != nil || q != p {
				return fmt.Errorf("route[%d]: sni %q", j, p)
			}
		}
		for _, a := range r.ALPN {
			if a == "" || len(a) > maxALPN {
				return fmt.Errorf("route[%d]: alpn %q", j, a)
			}
		}
		for _, p := range r.Source {
			if !p.IsValid() || p != p.Masked() {
				return fmt.Errorf("route[%d]: source %v", j, p)
			}
		}
		for i, earlier := range f.Routes[:j] {
			if earlier.Shadows(&r.Rule) {
				return fmt.Errorf("route[%d] shadowed by route[%d]", j, i)
			}
		}
	}
	return nil
}

func checkBackend(b *session.Backend) error {
	switch {
	case !validName(b.Name):
		return fmt.Errorf("backend name %q", b.Name)
	case !slices.Contains(balance.Algorithms, b.Balance):
		return fmt.Errorf("backend %s: balance %q", b.Name, b.Balance)
	case b.TimeoutConnect <= 0 || b.TimeoutServer <= 0 || b.TimeoutTunnel < 0:
		return fmt.Errorf("backend %s: timeouts", b.Name)
	case b.Retries < 0 || b.Retries > 100:
		return fmt.Errorf("backend %s: retries %d", b.Name, b.Retries)
	case len(b.Servers) == 0:
		return fmt.Errorf("backend %s: no servers", b.Name)
	}
	names := map[string]bool{}
	for _, s := range b.Servers {
		srv := s.Template != nil && s.Template.SRV // its port comes with its records
		if !validName(s.Name) || names[s.Name] || s.Address.Port() == 0 && !srv || s.Address.Addr().IsValid() == (s.FQDN != "") {
			return fmt.Errorf("backend %s: server %+v", b.Name, s)
		}
		names[s.Name] = true
		if b.Check == nil && (s.CheckPort != 0 || s.CheckAddress.IsValid()) {
			return fmt.Errorf("backend %s: server %s: a check endpoint without checks", b.Name, s.Name)
		}
		if b.Check != nil && s.FQDN == "" {
			if ap := session.CheckAddr(b.Check, s); !ap.IsValid() || ap.Port() == 0 {
				return fmt.Errorf("backend %s: server %s: checked at %v", b.Name, s.Name, ap)
			}
		}
	}
	if b.Check != nil {
		if err := session.HealthSpec(b.Check).Validate(); err != nil {
			return fmt.Errorf("backend %s: the checker refuses its check: %w", b.Name, err)
		}
	}
	return nil
}

// FuzzLocate runs the line scanner on raw bytes: Parse only feeds it text
// the TOML parser accepted, but it must not panic or hang on anything.
func FuzzLocate(f *testing.F) {
	f.Add(Default())
	for _, tc := range badConfigs {
		f.Add([]byte(tc.toml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l := newLocator(string(data))
		for k, n := range l.lines {
			if n < 1 || n > strings.Count(string(data), "\n")+1 {
				t.Fatalf("key %q at line %d", k, n)
			}
		}
	})
}
