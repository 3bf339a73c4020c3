//go:build linux

package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// newRoutesCmd shows how each router reaches the VIPs, from its kernel and
// its BGP speaker: what a tier's failover changes.
func newRoutesCmd() *cobra.Command {
	var sel labSelector
	var format outputFormat
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Show each router's BGP sessions and its kernel routes to the VIPs, with their next hops",
		Long: "routes reads, for every router of a running lab, its BGP speaker's sessions (peer, state,\n" +
			"uptime, prefixes) and the routes its kernel holds to the VIPs: over a nexthop group (a tier)\n" +
			"or a single next hop, each named by the katran it reaches. Nothing comes from the topology.",
		Args:    cobra.NoArgs,
		PreRunE: requireRoot(rootForNamespaces),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := format.check(); err != nil {
				return err
			}
			var routers []lab.RouterRoutes
			err := sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) (err error) {
				routers, err = lab.Routes(cmd.Context(), rts, topo)
				return err
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if format == "json" {
				return writeJSON(w, routers)
			}
			for _, r := range routers {
				fmt.Fprintf(w, "router %s (routing %s)\n", r.Router, r.Routing)
				if r.Speaker != "" {
					fmt.Fprintf(w, "  BGP speaker: %s\n", r.Speaker)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				if len(r.Sessions) > 0 {
					fmt.Fprintln(tw, "  SESSION\tNODE\tASN\tSTATE\tUP\tRECEIVED\tACCEPTED\tADVERTISED")
					for _, s := range r.Sessions {
						up := "-"
						if s.UptimeSeconds > 0 {
							up = (time.Duration(s.UptimeSeconds) * time.Second).String()
						}
						fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\n", s.Addr, s.Node, s.ASN, s.State, up, s.Received, s.Accepted, s.Advertised)
					}
				}
				fmt.Fprintln(tw, "  VIP\tROUTE\tNEXT HOPS")
				for _, vr := range r.Routes {
					route := "none"
					switch {
					case vr.Group != 0:
						route = fmt.Sprintf("%s, group %d", vr.Protocol, vr.Group)
					case vr.Protocol != "":
						route = vr.Protocol
					}
					var hops []string
					for _, h := range vr.NextHops {
						hop := fmt.Sprintf("%s %s (%s)", h.Via, h.Dev, h.Node)
						if h.State != "ok" {
							hop += " " + h.State
						}
						hops = append(hops, hop)
					}
					fmt.Fprintf(tw, "  %s\t%s\t%s\n", vr.Dst, route, strings.Join(hops, ", "))
				}
				tw.Flush()
			}
			return nil
		},
	}
	sel.flags(cmd)
	format.register(cmd)
	return cmd
}
