package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print dsrlab's version and the commit it was built from",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionString())
		},
	}
}

// versionString comes from the build information the Go toolchain embeds,
// so a binary built from a git checkout names its commit with no ldflags.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dsrlab (no build information)"
	}
	version, commit, dirty := info.Main.Version, "unknown", ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = " (modified)"
			}
		}
	}
	return fmt.Sprintf("dsrlab %s commit %s%s %s", version, commit, dirty, info.GoVersion)
}
