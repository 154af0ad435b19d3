// Command ringproxy is a TCP proxy and load balancer whose data path runs
// on io_uring. This package is the wiring: the CLI, config loading,
// logging and signals. The data path lives in ring/, session/ and mempool/.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

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
	return &cli.App{
		Name:     "ringproxy",
		Usage:    "TCP proxy and load balancer on io_uring",
		Version:  version,
		Commands: []*cli.Command{runCommand(), checkCommand(), demoCommand(), versionCommand(), ctlCommand()},
		// Errors are printed once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}
