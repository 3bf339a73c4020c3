//go:build linux

package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/load"
)

// newLoadCmd drives connections through a VIP. It runs inside a client
// container (the node image carries this binary): scripts/soak.sh and the
// end-to-end tests start it with docker exec.
func newLoadCmd() *cobra.Command {
	cfg := load.Config{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:    "load",
		Short:  "Drive short and long connections through a VIP and account for each (run inside a client)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res := load.Run(cmd.Context(), cfg)
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), res.Summary())
				for _, e := range res.Errors {
					fmt.Fprintln(cmd.OutOrStdout(), "  error:", e)
				}
			}
			if res.Failed() {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Target, "target", "192.168.10.1:50007", "VIP:port")
	f.IntVar(&cfg.Short, "short", 100, "short connections to make")
	f.IntVar(&cfg.Concurrency, "concurrency", 16, "short connections in flight at once")
	f.IntVar(&cfg.Long, "long", 0, "long connections held while the short ones run")
	f.DurationVar(&cfg.Interval, "interval", 100*time.Millisecond, "time between lines on a long connection")
	f.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "limit per dial and per answer")
	f.DurationVar(&cfg.Duration, "duration", 0, "hold the long connections at least this long")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
