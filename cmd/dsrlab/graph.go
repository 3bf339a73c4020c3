package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/graph"
)

func newGraphCmd() *cobra.Command {
	var file, format string
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Draw a topology and its packet flow (request, IPIP tunnel, direct return) as Mermaid or DOT",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := loadTopology(file)
			if err != nil {
				return err
			}
			var out string
			switch format {
			case "mermaid":
				out = graph.Mermaid(topo)
			case "dot":
				out = graph.DOT(topo)
			default:
				return fmt.Errorf("--format %q: want mermaid or dot", format)
			}
			_, err = io.WriteString(cmd.OutOrStdout(), out)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "topology", "t", "", "topology file (default: the embedded reference lab)")
	cmd.Flags().StringVar(&format, "format", "mermaid", "mermaid or dot")
	return cmd
}
