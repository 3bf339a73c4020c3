//go:build linux

package main

import (
	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/bgp"
	"github.com/dsrlab/dsrlab/internal/netconf"
)

// newBGPCmd is the BGP speaker of a katran or a router; dsrlab starts it
// inside the node's container, from the copy of itself in the node image.
func newBGPCmd() *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:    "bgp",
		Short:  "Run a node's BGP speaker (started by `up` inside katran and router containers)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := bgp.ParseConfig([]byte(config))
			if err != nil {
				return err
			}
			var inst bgp.Installer
			if cfg.Role == bgp.RoleLearn {
				ns, err := netconf.Current(cfg.Node)
				if err != nil {
					return err
				}
				defer ns.Close()
				inst = bgp.KernelRoutes{NS: ns}
			}
			// SIGTERM cancels the context: the speaker withdraws, then
			// closes its sessions, and the command exits 0.
			return bgp.Run(cmd.Context(), cfg, inst, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "the speaker's configuration (JSON)")
	cmd.MarkFlagRequired("config")
	return cmd
}
