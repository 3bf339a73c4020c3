package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newValidateCmd() *cobra.Command {
	var file string
	var resolved bool
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a topology file and its programs; with --resolved, print it with every derived value filled in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := loadTopology(file)
			if err != nil {
				return err
			}
			if resolved {
				out, err := topo.Resolved()
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			// Programs are opened as up would (a source compiled),
			// so that every mistake in their blocks shows now.
			notes, err := checkPrograms(cmd.Context(), topo)
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintf(cmd.OutOrStdout(), "note: %s\n", n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: lab %q is valid (%d nodes, %d links, %d VIPs)\n",
				topo.File, topo.Name, len(topo.Nodes), len(topo.Links), len(topo.VIPs))
			for _, a := range topo.Advice() {
				fmt.Fprintf(cmd.OutOrStdout(), "advice: %s\n", a)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "topology", "t", "", "topology file (default: the embedded reference lab)")
	cmd.Flags().BoolVar(&resolved, "resolved", false, "print the fully resolved topology")
	return cmd
}
