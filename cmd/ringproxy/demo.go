package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/urfave/cli/v2"

	"ringproxy/cmd/ringproxy/config"
	"ringproxy/session"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the default config with two built-in HTTP backends (curl 127.0.0.1:8080)",
		Flags: []cli.Flag{workersFlag},
		Action: func(c *cli.Context) error {
			cfg, err := config.Parse("default config", config.Default())
			if err != nil {
				return err
			}
			if n := c.Int("workers"); n > 0 {
				cfg.Global.Workers = n
			}
			log := newLogger(cfg.Log.Level)
			stop, err := startDemoBackends(cfg, log)
			if err != nil {
				return err
			}
			defer stop()
			return serve(cfg, nil, log, func(p *session.Proxy) {
				for _, a := range p.Addrs(cfg.Frontends[0].Name) {
					fmt.Fprintf(c.App.Writer, "demo: try `curl %s` twice: two backends take turns\n", a)
				}
			})
		},
	}
}

// startDemoBackends serves a tiny HTTP answer on every server address of
// the config, naming the server, so round robin can be seen with curl.
func startDemoBackends(cfg *session.Config, log *slog.Logger) (stop func(), err error) {
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			s.Close()
		}
	}
	for _, be := range cfg.Backends {
		for _, srv := range be.Servers {
			ln, err := net.Listen("tcp", srv.Address.String())
			if err != nil {
				stop()
				return nil, fmt.Errorf("demo backend %s/%s: %w", be.Name, srv.Name, err)
			}
			hs := &http.Server{Handler: demoHandler(be.Name, srv.Name, srv.Address.String())}
			servers = append(servers, hs)
			go func() {
				if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("demo backend failed", "server", srv.Name, "err", err)
				}
			}()
			log.Info("demo backend", "server", be.Name+"/"+srv.Name, "addr", srv.Address)
		}
	}
	return stop, nil
}

func demoHandler(backend, server, addr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		// A new connection per request is a new session: round robin shows
		// even to a browser, which would otherwise reuse one connection.
		w.Header().Set("Connection", "close")
		fmt.Fprintf(w, "hello from %s/%s (%s), you asked for %s\n", backend, server, addr, r.URL.Path)
	})
}
