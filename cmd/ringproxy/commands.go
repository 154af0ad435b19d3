package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/urfave/cli/v2"

	"ringproxy/cmd/ringproxy/config"
	"ringproxy/ring"
	"ringproxy/session"
	"ringproxy/session/admin"
	"ringproxy/session/stats"
)

var (
	configFlag  = &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML config `FILE`"}
	engineFlag  = &cli.StringFlag{Name: "engine", Usage: "I/O engine: uring or epoll (overrides global.engine)"}
	workersFlag = &cli.IntFlag{Name: "workers", Usage: "worker loops, 0 = one per CPU (overrides global.workers)", Value: -1}
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run the proxy (the embedded default config without -c)",
		Flags: []cli.Flag{configFlag, engineFlag, workersFlag},
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			return serve(cfg, newLogger(cfg.Log.Level), nil)
		},
	}
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "validate a config file and print what it would run",
		Flags: []cli.Flag{&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML config `FILE`", Required: true}},
		Action: func(c *cli.Context) error {
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				// FILE:LINE: message lines, as editors and CI parse them.
				fmt.Fprintln(c.App.ErrWriter, err)
				return cli.Exit("", 1)
			}
			fmt.Fprint(c.App.Writer, config.Summary(cfg))
			fmt.Fprintf(c.App.Writer, "%s: OK\n", c.String("config"))
			return nil
		},
	}
}

func ctlCommand() *cli.Command {
	return &cli.Command{
		Name:      "ctl",
		Usage:     "send a runtime command to a running proxy (try: ctl help)",
		ArgsUsage: "COMMAND...",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "socket", Usage: "admin socket `PATH`", Value: "/run/ringproxy/admin.sock"}},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return errors.New("ctl: which command? try: ringproxy ctl help")
			}
			out, err := admin.Send(c.String("socket"), strings.Join(c.Args().Slice(), " "))
			if err != nil {
				return err
			}
			fmt.Fprint(c.App.Writer, out)
			if strings.HasPrefix(out, "error:") {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, Go version, kernel and io_uring features",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "ringproxy %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprint(c.App.Writer, ring.Probe().String())
			for _, name := range ring.Engines {
				if err := ring.EngineUsable(name); err != nil {
					fmt.Fprintf(c.App.Writer, "engine %-6s unavailable: %v\n", name, err)
				} else {
					fmt.Fprintf(c.App.Writer, "engine %-6s available\n", name)
				}
			}
			return nil
		},
	}
}

// notify tells systemd (Type=notify) how the service is doing; outside
// systemd it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify", "state", state, "err", err)
	}
}

// serveStats runs the [admin].stats HTTP listener on a goroutine of its
// own, off the worker loops.
func serveStats(cfg *session.Config, p *session.Proxy, log *slog.Logger) (stop func(), err error) {
	if !cfg.Admin.Stats.IsValid() {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.Admin.Stats.String())
	if err != nil {
		return nil, fmt.Errorf("admin stats listener: %w", err)
	}
	srv := &http.Server{Handler: stats.Handler(p), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin stats listener failed", "err", err)
		}
	}()
	log.Info("stats", "addr", ln.Addr().String(), "paths", "/metrics /stats.json")
	return func() { srv.Close() }, nil
}

// loadConfig reads -c FILE or the embedded default, then applies flags.
func loadConfig(c *cli.Context) (*session.Config, error) {
	var cfg *session.Config
	var err error
	if path := c.String("config"); path != "" {
		cfg, err = config.Load(path)
	} else {
		cfg, err = config.Parse("default config", config.Default())
	}
	if err != nil {
		return nil, err
	}
	switch e := c.String("engine"); e {
	case "":
	case "uring", "epoll":
		cfg.Global.Engine = e
	default:
		return nil, fmt.Errorf("--engine %q: unknown engine (want uring or epoll)", e)
	}
	if n := c.Int("workers"); n == 0 {
		cfg.Global.Workers = runtime.NumCPU()
	} else if n > 0 {
		cfg.Global.Workers = n
	}
	return cfg, nil
}

// stderrLog carries the process's own log lines to stderr through a
// bounded queue, so a worker loop that logs never waits on a slow pipe.
var stderrLog = session.NewLogSink(os.Stderr, 1024)

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config
	return slog.New(slog.NewTextHandler(stderrLog, &slog.HandlerOptions{Level: l}))
}

// serve runs the proxy until SIGTERM or SIGINT, then drains for up to the
// grace period. A second signal ends the drain at once. started, if set,
// is called once the proxy accepts.
func serve(cfg *session.Config, log *slog.Logger, started func(*session.Proxy)) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	// Reload is not built yet: SIGHUP's default action would kill the
	// process, so it is caught and ignored loudly.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	go func() {
		for range hups {
			log.Warn("SIGHUP ignored: config reload is not supported yet; restart to apply a new config")
		}
	}()

	p, err := session.New(cfg, log)
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return err
	}
	for _, fe := range cfg.Frontends {
		log.Info("listening", "frontend", fe.Name, "addrs", p.Addrs(fe.Name), "backend", fe.BackendName)
	}
	stop, err := serveStats(cfg, p, log)
	if err != nil {
		p.Shutdown(0)
		return err
	}
	defer stop()
	if cfg.Admin.Socket != "" {
		sock, err := admin.Listen(cfg.Admin.Socket, os.FileMode(cfg.Admin.SocketMode), p)
		if err != nil {
			p.Shutdown(0)
			return err
		}
		defer sock.Close()
		log.Info("admin socket", "path", cfg.Admin.Socket)
	}
	log.Info("started", "workers", cfg.Global.Workers, "engine", cfg.Global.Engine, "maxconn", cfg.Global.MaxConn)
	notify(log, daemon.SdNotifyReady)
	if started != nil {
		started(p)
	}
	select {
	case sig := <-sigs:
		log.Info("stopping: draining sessions", "signal", sig.String(), "grace", cfg.Global.Grace)
		notify(log, daemon.SdNotifyStopping)
		drained := make(chan struct{})
		go func() { p.Shutdown(cfg.Global.Grace); close(drained) }()
		select {
		case <-drained:
		case sig := <-sigs:
			log.Warn("second signal: closing every session now", "signal", sig.String())
			p.Shutdown(0)
		}
	case <-p.Done():
	}
	if err := p.Err(); err != nil {
		return err
	}
	st := p.Stats()
	log.Info("stopped", "sessions", st.Accepted, "killed", st.Ended[session.ReasonKilled])
	return nil
}
