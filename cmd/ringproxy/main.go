// Command ringproxy is a TCP proxy and load balancer whose data path runs
// on io_uring. This package is the wiring: the CLI, config loading,
// logging and signals. The data path lives in ring/, session/ and mempool/.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

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
	stderrLog.Close() // the last log lines, "stopped" among them, before the error
	os.Exit(report(os.Stderr, err))
}

// errPrefix begins every error line the binary prints, so that one can
// be told from the output of the command around it in a script, a unit's
// journal, or CI.
const errPrefix = "ringproxy: "

// report prints err, each of its lines after errPrefix (a config with
// three problems is three "ringproxy: FILE:LINE: key: message" lines,
// as editors and CI parse them), and returns the exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	code := 1
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		for line := range strings.SplitSeq(strings.TrimRight(msg, "\n"), "\n") {
			fmt.Fprintf(stderr, "%s%s\n", errPrefix, line)
		}
	}
	return code
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
