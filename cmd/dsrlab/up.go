package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime/docker"
)

func newUpCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring a lab up (the reference DSR lab when no topology is given)",
		Args:  cobra.NoArgs,
		PreRunE: requireRoot("up creates veths inside container network namespaces " +
			"and loads XDP programs (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_BPF)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := loadTopology(file)
			if err != nil {
				return err
			}
			rt, err := docker.New()
			if err != nil {
				return err
			}
			defer rt.Close()
			out := cmd.OutOrStdout()
			sum, err := lab.Up(cmd.Context(), rt, topo, out)
			if err != nil {
				return err
			}
			printSummary(out, sum)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "topology", "t", "", "topology file (default: the embedded reference lab, labs/dsr.yaml)")
	return cmd
}

func printSummary(w io.Writer, s *lab.Summary) {
	fmt.Fprintf(w, "Lab %q is up in %v\n", s.Lab, s.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  containers  %s\n", strings.Join(s.Containers, ", "))
	fmt.Fprintf(w, "  links       %d\n", s.Links)
	fmt.Fprintf(w, "  VIPs        %s\n", strings.Join(s.VIPs, ", "))
	fmt.Fprintf(w, "  XDP         %s\n", joinMap(s.XDP))
	fmt.Fprintf(w, "  decap       %s\n", joinMap(s.Decap))
}

func joinMap(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+m[k])
	}
	return strings.Join(parts, "; ")
}
