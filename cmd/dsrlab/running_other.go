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
	for _, name := range []string{"up", "down", "inspect", "verify", "exec", "real", "stats", "image", "map", "capture", "trace", "test", "fail", "recover", "routes", "ui", "events"} {
		why := "network namespaces, XDP, a container engine"
		if name == "test" {
			why = "it runs XDP programs in the Linux kernel with BPF_PROG_TEST_RUN; no containers, so a Linux VM is enough"
		}
		cmds = append(cmds, &cobra.Command{
			Use:                name,
			Short:              "(Linux only) see `dsrlab " + name + " --help` on Linux",
			DisableFlagParsing: true,
			RunE: func(*cobra.Command, []string) error {
				return fmt.Errorf("dsrlab %s needs Linux (%s); "+
					"on %s, validate, graph, example, version and completion work", name, why, runtime.GOOS)
			},
		})
	}
	return cmds
}
