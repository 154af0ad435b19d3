// Command ringproxy is a TCP proxy and load balancer whose data path runs
// on io_uring. This package is the wiring: the CLI, config loading,
// logging and signals. The data path lives in ring/, session/ and mempool/.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"ringproxy/session/admin"
)

// version is set at build time, from git describe, by the Makefile
// (-ldflags "-X main.version=..."); buildVersion falls back on what the
// Go toolchain stamped.
var version = ""

// buildVersion is the version stamped by the Makefile, else the VCS
// revision go build recorded ("dev-0123456789ab", "-dirty" when the tree
// had changes), else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	v := "dev-" + rev[:min(12, len(rev))]
	if dirty {
		v += "-dirty"
	}
	return v
}

// usageLine is what an unknown command gets: the commands, not a page.
const usageLine = "usage: ringproxy run|check|demo|ctl|version [flags]  (ringproxy help for more)"

func main() {
	err := newApp().Run(os.Args)
	stderrLog.Close() // the last lines, "stopped" among them
	var exit cli.ExitCoder
	switch {
	case err == nil:
	case errors.As(err, &exit) && err.Error() == "":
		os.Exit(exit.ExitCode()) // already reported
	default:
		fmt.Fprintln(os.Stderr, "ringproxy:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	admin.Version = buildVersion() // show info's Version
	return &cli.App{
		Name:     "ringproxy",
		Usage:    "TCP proxy and load balancer on io_uring",
		Version:  buildVersion(),
		Commands: []*cli.Command{runCommand(), checkCommand(), demoCommand(), versionCommand(), ctlCommand()},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.ShowAppHelp(c)
			}
			return fmt.Errorf("unknown command %q\n%s", c.Args().First(), usageLine)
		},
		// Errors are printed once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}
