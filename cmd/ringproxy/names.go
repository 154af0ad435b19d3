package main

import (
	"context"
	"fmt"
	"strings"

	"ringproxy/session"
	"ringproxy/session/resolve"
)

// checkNames asks [resolvers]' nameservers once for every server name,
// as the first re-resolution after start would, and returns a warning
// for each that does not resolve now. They are warnings, not errors:
// init_addr decides what start does, and a name may resolve by then.
func checkNames(cfg *session.Config) []string {
	if cfg.Resolvers == nil {
		return nil
	}
	rc, err := session.ResolverConfig(cfg.Resolvers)
	if err != nil {
		return []string{fmt.Sprintf("resolvers: %v: no name can be re-resolved", err)}
	}
	r, err := resolve.New(rc)
	if err != nil {
		return []string{err.Error()}
	}
	defer r.Close()
	var warns []string
	for _, b := range cfg.Backends {
		for _, s := range b.Servers {
			q := resolve.Query{Name: s.FQDN, Port: s.Address.Port()}
			switch t := s.Template; {
			case s.FQDN == "" || t != nil && s.Name != t.Name+"1":
				continue // one question per template
			case t != nil:
				if t.SRV {
					q.Kind = resolve.SRV
				}
				if _, err := r.Resolve(context.Background(), q); err != nil {
					warns = append(warns, fmt.Sprintf("backend %s server_template %s: %v (its slots start empty, and stay so until it resolves)", b.Name, t.Name, err))
				}
			default:
				if _, err := r.Resolve(context.Background(), q); err != nil {
					warns = append(warns, fmt.Sprintf("backend %s server %s: %v (start would try init_addr %s)",
						b.Name, s.Name, err, strings.Join(s.InitAddr, ",")))
				}
			}
		}
	}
	return warns
}
