//go:build !linux

package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// labCommands stand in for the commands that need Linux, so that `dsrlab
// up` on a laptop says why it cannot run instead of "unknown command".
func labCommands(*output) []*cobra.Command {
	var cmds []*cobra.Command
	for _, name := range []string{"up", "down", "inspect", "verify", "exec", "real", "stats", "image", "map", "capture", "trace", "fail", "recover", "routes", "events"} {
		cmds = append(cmds, &cobra.Command{
			Use:                name,
			Short:              "(Linux only) see `dsrlab " + name + " --help` on Linux",
			DisableFlagParsing: true,
			RunE: func(*cobra.Command, []string) error {
				return fmt.Errorf("dsrlab %s needs Linux (network namespaces, XDP, a container engine); "+
					"on %s, validate, graph, version and completion work", name, runtime.GOOS)
			},
		})
	}
	return cmds
}
