package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/urfave/cli/v2"

	"ringproxy/cmd/ringproxy/config"
	"ringproxy/ring"
	"ringproxy/session"
	"ringproxy/session/admin"
)

var (
	configFlag  = &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML config `FILE`"}
	engineFlag  = &cli.StringFlag{Name: "engine", Usage: "I/O engine: uring or epoll (overrides global.engine)"}
	workersFlag = &cli.IntFlag{Name: "workers", Usage: "worker loops, 0 = one per CPU (overrides global.workers)",
		DefaultText: "global.workers of the config"}
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
			return serve(cfg, func() (*session.Config, error) { return loadConfig(c) }, newLogger(cfg.Log.Level), nil)
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
		// Every word after the flags is the command, "help" and "h"
		// included: the socket has its own help.
		HideHelp:        true,
		HideHelpCommand: true,
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
			fmt.Fprintf(c.App.Writer, "ringproxy %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
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
	if c.IsSet("workers") {
		switch n := c.Int("workers"); {
		case n < 0:
			return nil, fmt.Errorf("--workers %d: want 0 (one per CPU) or more", n)
		case n == 0:
			cfg.Global.Workers = runtime.NumCPU()
		default:
			cfg.Global.Workers = n
		}
	}
	return cfg, nil
}

// stderrLog carries the process's own log lines to stderr through a
// bounded queue, so a worker loop that logs never waits on a slow pipe.
var stderrLog = session.NewLogSink(os.Stderr, 1024)

// logLevel is the process log's level; a reload may change it.
var logLevel = new(slog.LevelVar)

func newLogger(level string) *slog.Logger {
	setLogLevel(level)
	return slog.New(slog.NewTextHandler(stderrLog, &slog.HandlerOptions{Level: logLevel}))
}

func setLogLevel(level string) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config
	logLevel.Set(l)
}
