package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Stamped by `make build` with -ldflags -X, from `git describe --tags
// --always --dirty` and `git rev-parse HEAD`. The toolchain's own VCS
// stamping cannot be relied on: go env sets GOFLAGS=-buildvcs=false on this
// machine (in $(go env GOENV)), which leaves the build information with no
// vcs.* settings and a "(devel)" version; CGO_ENABLED=0 and the ownership
// of .git (root, as the builder) play no part. A plain `go build` still
// falls back to the build information.
var (
	version string
	commit  string
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

func versionString() string {
	info, _ := debug.ReadBuildInfo()
	return formatVersion(version, commit, info)
}

// formatVersion prefers what the Makefile stamped and fills the rest from
// the build information, which may be nil (no information embedded).
func formatVersion(stampedVersion, stampedCommit string, info *debug.BuildInfo) string {
	v, c, dirty, goVersion := "(devel)", "unknown", "", runtime.Version()
	if info != nil {
		if info.Main.Version != "" {
			v = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				c = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = " (modified)"
				}
			}
		}
	}
	if stampedVersion != "" {
		v = stampedVersion
	}
	if stampedCommit != "" {
		// git describe --dirty already says whether the tree was modified.
		c, dirty = stampedCommit, ""
	}
	return fmt.Sprintf("dsrlab %s commit %s%s %s", v, c, dirty, goVersion)
}
