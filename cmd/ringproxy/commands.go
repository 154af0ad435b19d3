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
		Description: "Reads the file as run would, and fails where run would fail before serving:\n" +
			"a bad key or value (FILE:LINE: key: message), a syslog access log with no\n" +
			"syslog socket, or a state_file in a directory it cannot write. It says which\n" +
			"lines of the state file a start would ignore. It binds nothing unless\n" +
			"--bind-test is given. Server names are asked once of [resolvers]' nameservers:\n" +
			"one that does not resolve is a warning.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML config `FILE`", Required: true},
			&cli.BoolFlag{Name: "bind-test", Usage: "also bind every frontend address and the stats address for an instant " +
				"(addresses this config's running ringproxy holds pass: a reload takes them over)"},
		},
		Action: func(c *cli.Context) error {
			path := c.String("config")
			cfg, err := config.Load(path)
			if err != nil {
				return err // FILE:LINE: message lines, as editors and CI parse them
			}
			var notes []string
			errs := checkSyslog(cfg)
			stateNotes, stateErrs := checkStateFile(cfg)
			errs = append(errs, stateErrs...)
			if c.Bool("bind-test") {
				var bindErrs []error
				notes, bindErrs = bindTest(cfg)
				errs = append(errs, bindErrs...)
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			fmt.Fprint(c.App.Writer, config.Summary(cfg))
			for _, n := range stateNotes {
				fmt.Fprintf(c.App.Writer, "state file: %s\n", n)
			}
			for _, n := range notes {
				fmt.Fprintf(c.App.Writer, "bind test: %s\n", n)
			}
			for _, w := range checkNames(cfg) {
				fmt.Fprintf(c.App.Writer, "warning: %s\n", w)
			}
			fmt.Fprintf(c.App.Writer, "%s: OK\n", path)
			return nil
		},
	}
}

// checkSyslog fails as Start would when access lines go to a syslog
// socket that is not there.
func checkSyslog(cfg *session.Config) []error {
	if !cfg.Log.Access || cfg.Log.Target != "syslog" {
		return nil
	}
	w, err := session.DialSyslog()
	if err != nil {
		return []error{fmt.Errorf("access log to syslog: %w", err)}
	}
	w.Close()
	return nil
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
			command := strings.Join(c.Args().Slice(), " ")
			out, err := admin.Send(c.String("socket"), command)
			if err != nil {
				return err
			}
			if msg, failed := strings.CutPrefix(out, "error: "); failed {
				return ctlError(command, msg)
			}
			fmt.Fprint(c.App.Writer, out)
			return nil
		},
	}
}

// ctlError is an error answer of the admin socket, as an error of the
// binary: "ctl COMMAND: message", its continuation lines (a reload's
// config problems, indented by the socket) each a line of their own.
func ctlError(command, answer string) error {
	lines := strings.Split(strings.TrimRight(answer, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "  ")
	}
	return fmt.Errorf("ctl %s: %s", command, strings.Join(lines, "\n"))
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
