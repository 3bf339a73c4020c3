//go:build linux

package main

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
)

func newInspectCmd() *cobra.Command {
	var sel labSelector
	var format outputFormat
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show running labs as Docker and the kernel see them, and what differs from their topology",
		Long: "inspect reads each node's container, interfaces, addresses, MACs and default route, the XDP\n" +
			"balancer and its VIPs from the kernel's maps, and each real's decapsulation and loopback\n" +
			"VIPs. Without -t or --name it shows every lab that is up.",
		Args:    cobra.NoArgs,
		PreRunE: requireRoot(rootForNamespaces),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := format.check(); err != nil {
				return err
			}
			rt, closeRT, err := openRuntime()
			if err != nil {
				return err
			}
			defer closeRT()
			ctx := cmd.Context()
			if err := rt.Ping(ctx); err != nil {
				return err
			}
			names, err := lab.Labs(ctx, rt)
			if err != nil {
				return err
			}
			if sel.file != "" || sel.name != "" {
				name, err := sel.labName(ctx, rt)
				if err != nil {
					return err
				}
				names = []string{name}
			}
			reports := []*lab.LabReport{}
			for _, name := range names {
				hosts, err := lab.LoadHosts(name)
				if err != nil {
					return err
				}
				rts, closeRTs, err := openEngines(hosts)
				if err != nil {
					return err
				}
				if err := lab.Reachable(ctx, rts, slices.Sorted(maps.Keys(rts))); err != nil {
					closeRTs()
					return err
				}
				r, err := lab.Inspect(ctx, rts, name)
				closeRTs()
				if err != nil {
					return err
				}
				reports = append(reports, r)
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), reports)
			}
			if len(reports) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no lab is up")
			}
			for _, r := range reports {
				printReport(cmd.OutOrStdout(), r)
			}
			return nil
		},
	}
	sel.flags(cmd)
	format.register(cmd)
	return cmd
}

func printReport(w io.Writer, r *lab.LabReport) {
	fmt.Fprintf(w, "Lab %q", r.Lab)
	if r.Topology != "" {
		fmt.Fprintf(w, " (from %s)", r.Topology)
	}
	fmt.Fprintln(w)
	// One row per node, then one per interface below it: a router with
	// many links stays readable.
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tHOST\tCONTAINER\tSTATE\tIMAGE\tGATEWAY\tDATA PLANE")
	for _, n := range r.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, n.Kind, n.Host, n.Container, n.State, n.Image,
			orDash(strings.Join(n.Gateways, ",")), orDash(dataPlane(n)))
		for _, i := range n.Interfaces {
			if i.Name == "lo" {
				continue
			}
			addrs := make([]string, len(i.Addrs))
			for k, a := range i.Addrs {
				addrs[k] = a.String()
			}
			xdp := ""
			if i.XDP.ProgID != 0 {
				xdp = fmt.Sprintf("xdp %d (%s)", i.XDP.ProgID, i.XDP.Mode)
			}
			fmt.Fprintf(tw, "  %s\t%s\t\t%s\tmtu %d\t%s\t\t\n", i.Name, orDash(strings.Join(addrs, ",")), i.MAC, i.MTU, xdp)
		}
	}
	tw.Flush()
	for _, n := range r.Nodes {
		if len(n.Health) > 0 {
			fmt.Fprintf(w, "Health checks from %s:\n", n.Node)
			printHealth(w, n.Health)
		}
	}
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "  no differences from the topology")
	}
	for _, p := range r.Problems {
		fmt.Fprintln(w, "  ! "+p)
	}
}

func dataPlane(n lab.NodeReport) string {
	var parts []string
	if b := n.Balancer; b != nil {
		var vips []string
		for _, v := range b.VIPs {
			reals := make([]string, len(v.Reals))
			for i, r := range v.Reals {
				reals[i] = fmt.Sprintf("%s(w%d)", r.Addr, r.Weight)
			}
			vips = append(vips, v.VIP+" -> "+strings.Join(reals, ","))
		}
		parts = append(parts, fmt.Sprintf("balancer %s on %s: %s", b.Mode, b.Interface, strings.Join(vips, "; ")))
	}
	for _, p := range n.Programs {
		if p.File != "" {
			parts = append(parts, fmt.Sprintf("program %s (%s, id %d, tag %s) %s on %s", p.Name, filepath.Base(p.File), p.ID, p.Tag, p.Mode, p.Interface))
		}
	}
	if len(n.NAT) > 0 {
		parts = append(parts, "nat "+strings.Join(n.NAT, ", "))
	}
	if n.Decap != "" {
		parts = append(parts, "decap "+n.Decap)
	}
	if len(n.Loopback) > 0 {
		parts = append(parts, "lo "+strings.Join(n.Loopback, ","))
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
