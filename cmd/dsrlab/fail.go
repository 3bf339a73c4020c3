//go:build linux

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// newFailCmd takes a node of a running lab out the way a machine fails, so
// that what a tier of balancers does then can be watched (routes, verify,
// stats, a client's connections).
func newFailCmd() *cobra.Command {
	var sel labSelector
	var how string
	cmd := &cobra.Command{
		Use:   "fail NODE",
		Short: "Take a node out the way a machine fails: kill its container, stop it cleanly, or cut its links",
		Long: "fail takes NODE of a running lab out:\n" +
			"  --how kill  SIGKILL of its container (a crash; the default)\n" +
			"  --how stop  a clean stop: SIGTERM first, so a katran withdraws its VIPs over BGP\n" +
			"  --how link  its interfaces set down, its processes running (a cut cable)\n" +
			"`dsrlab recover NODE` brings it back.",
		Example:           "  dsrlab fail katran2\n  dsrlab fail --how link katran2 && dsrlab routes",
		Args:              cobra.ExactArgs(1),
		PreRunE:           requireRoot(rootForNamespaces),
		ValidArgsFunction: completeNodes(&sel),
		RunE: func(cmd *cobra.Command, args []string) error {
			return sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) error {
				unlock, err := lab.Lock(topo.Name)
				if err != nil {
					return err
				}
				defer unlock()
				if err := lab.Fail(cmd.Context(), rts, topo, args[0], lab.FailMode(how)); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s failed (%s); `dsrlab recover %s` brings it back\n", args[0], how, args[0])
				return nil
			})
		},
	}
	sel.flags(cmd)
	cmd.Flags().StringVar(&how, "how", string(lab.FailKill), "kill, stop or link")
	return cmd
}

// newRecoverCmd brings a failed node back: its container started and wired
// again, as up does for whatever is missing.
func newRecoverCmd(out *output) *cobra.Command {
	var sel labSelector
	cmd := &cobra.Command{
		Use:   "recover NODE",
		Short: "Bring a failed node back: start its container and wire it again (links, addresses, routes, XDP)",
		Long: "recover starts NODE's container if it is stopped, then does what `dsrlab up` does for a\n" +
			"running lab: puts back every link, address, route and program that is missing or down.",
		Args:              cobra.ExactArgs(1),
		PreRunE:           requireRoot(rootForNamespaces),
		ValidArgsFunction: completeNodes(&sel),
		RunE: func(cmd *cobra.Command, args []string) error {
			return sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) error {
				if topo.Node(args[0]) == nil {
					return fmt.Errorf("lab %q has no node %q", topo.Name, args[0])
				}
				unlock, err := lab.Lock(topo.Name)
				if err != nil {
					return err
				}
				defer unlock()
				sum, err := lab.Up(cmd.Context(), rts, topo, out.reporter(cmd))
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s recovered (%d changes)\n", args[0], sum.Changes)
				return nil
			})
		},
	}
	sel.flags(cmd)
	return cmd
}

// completeNodes completes the first argument with the nodes of the lab's
// recorded topology.
func completeNodes(sel *labSelector) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		var out []string
		if len(args) == 0 {
			_ = sel.withTopology(cmd.Context(), func(_ runtime.Set, topo *topology.Topology) error {
				for _, n := range topo.Nodes {
					out = append(out, n.Name)
				}
				return nil
			})
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
