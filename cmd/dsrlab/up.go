//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
)

func newUpCmd(out *output) *cobra.Command {
	var file string
	var reconfigure bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring a lab up, or reconcile a running one (the reference DSR lab when no topology is given)",
		Long: "up creates the lab's containers, links, addresses, routes, XDP balancer, decapsulation and\n" +
			"echo services. On a lab that is already up it redoes only what is missing (a restarted\n" +
			"container's links) and applies changed VIP reals and weights to the running balancer\n" +
			"without reloading it. A failure rolls back what this run created.",
		Args:    cobra.NoArgs,
		PreRunE: requireRoot(rootForNamespaces),
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := loadTopology(file)
			if err != nil {
				return err
			}
			rts, closeRTs, err := openEngines(hostRecords(topo))
			if err != nil {
				return err
			}
			defer closeRTs()
			unlock, err := lab.Lock(topo.Name)
			if err != nil {
				return err
			}
			defer unlock()
			rep := out.reporter(cmd)
			if reconfigure {
				if _, err := lab.Down(cmd.Context(), rts, topo.Name, rep); err != nil {
					return err
				}
			}
			if !out.quiet && out.format == "text" {
				fmt.Fprintf(cmd.OutOrStdout(), "Lab %q from %s\n", topo.Name, topo.File)
			}
			sum, err := lab.Up(cmd.Context(), rts, topo, rep)
			if err != nil {
				return err
			}
			printSummary(cmd.OutOrStdout(), sum)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "topology", "t", "", "topology file (default: the embedded reference lab, labs/dsr.yaml)")
	cmd.Flags().BoolVar(&reconfigure, "reconfigure", false, "take the lab down first, then bring it up afresh")
	return cmd
}

func printSummary(w io.Writer, s *lab.Summary) {
	state := "is up"
	if s.Changes == 0 {
		state = "was already up: nothing changed"
	}
	fmt.Fprintf(w, "Lab %q %s (%v)\n", s.Lab, state, s.Elapsed.Round(time.Millisecond))
	containers := strings.Join(s.Containers, ", ")
	if len(s.Containers) > 8 {
		containers = fmt.Sprintf("%d (%s ... %s)", len(s.Containers), s.Containers[0], s.Containers[len(s.Containers)-1])
	}
	fmt.Fprintf(w, "  containers  %s\n", containers)
	fmt.Fprintf(w, "  links       %d\n", s.Links)
	fmt.Fprintf(w, "  VIPs        %s\n", strings.Join(s.VIPs, ", "))
	fmt.Fprintf(w, "  XDP         %s\n", lab.Grouped(s.XDP))
	if len(s.NAT) > 0 {
		fmt.Fprintf(w, "  NAT         %s\n", lab.Grouped(s.NAT))
	}
	fmt.Fprintf(w, "  decap       %s\n", lab.Grouped(s.Decap))
}
