//go:build linux

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

func newStatsCmd() *cobra.Command {
	var sel labSelector
	var format outputFormat
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the XDP balancers' counters: per VIP, per real, LRU hits and misses, passed, dropped, too big",
		Long: "stats reads the counters from the maps of the balancer programs attached to the katrans'\n" +
			"interfaces; no dsrlab process needs to have stayed running.",
		Args:    cobra.NoArgs,
		PreRunE: requireRoot(rootForNamespaces),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := format.check(); err != nil {
				return err
			}
			var stats []lab.BalancerStats
			var own []string
			err := sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) (err error) {
				if stats, err = lab.Stats(cmd.Context(), rts, topo); err != nil {
					return err
				}
				own = ownBalancers(topo)
				if len(stats) == 0 {
					return noStats(topo, own)
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, o := range own {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", o)
			}
			w := cmd.OutOrStdout()
			if format == "json" {
				return writeJSON(w, stats)
			}
			for _, s := range stats {
				fmt.Fprintf(w, "Balancer %s: encapsulated %d, passed %d, dropped %d, too big (ICMP sent) %d, LRU hits %d (other CPU %d), misses %d\n",
					s.Node, s.Encapsulated, s.Passed, s.Dropped, s.TooBig, s.LRUHits, s.LRURemote, s.LRUMisses)
				fmt.Fprintf(w, "  echo replies %d, ICMP forwarded to reals %d, IP options balanced %d, dropped: fragments %d, too big without DF %d; path MTU lowered %d; malformed IPv6 passed %d\n",
					s.EchoReplies, s.ICMPForwarded, s.IPOptions, s.DroppedFragments, s.DroppedTooBig, s.PathMTULowered, s.IPv6Malformed)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  \tNAME\tPACKETS\tBYTES")
				for _, r := range s.VIPs {
					fmt.Fprintf(tw, "  VIP\t%s\t%d\t%d\n", r.Name, r.Packets, r.Bytes)
				}
				for _, r := range s.Reals {
					fmt.Fprintf(tw, "  real\t%s\t%d\t%d\n", r.Name, r.Packets, r.Bytes)
				}
				tw.Flush()
				printHealth(w, s.Health)
			}
			return nil
		},
	}
	sel.flags(cmd)
	format.register(cmd)
	return cmd
}

// ownBalancers says, for each katran running the user's own program, where
// its counters are instead: that program keeps them in maps of its own.
func ownBalancers(topo *topology.Topology) []string {
	var out []string
	for _, k := range topo.NodesOfKind(topology.KindKatran) {
		if k.Program != nil {
			out = append(out, fmt.Sprintf("%s runs your own program (%s), which keeps its own counters: `dsrlab map %s` lists its maps",
				k.Name, filepath.Base(k.Program.File()), k.Name))
		}
	}
	return out
}

// noStats is why stats has nothing at all to show, as an error: an empty
// table and exit 0 would read as "no traffic".
func noStats(topo *topology.Topology, own []string) error {
	if len(own) > 0 {
		return fmt.Errorf("lab %q has no dsrlab balancer to read: %s", topo.Name, strings.Join(own, "; "))
	}
	return fmt.Errorf("lab %q has no XDP balancer to read: no katran serves a DSR VIP (NAT VIPs are counted by the kernel's conntrack)", topo.Name)
}
