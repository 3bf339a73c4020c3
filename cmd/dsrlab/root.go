package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/labs"
	"github.com/dsrlab/dsrlab/topology"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "dsrlab",
		Short:         "Labs for an XDP Direct Server Return load balancer",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUpCmd(), newDownCmd(), newValidateCmd(), newImageCmd(), newEchoCmd())
	return root
}

// requireRoot explains up front why root is needed, rather than failing
// deep inside with EPERM from setns or bpf.
func requireRoot(why string) func(*cobra.Command, []string) error {
	return func(*cobra.Command, []string) error {
		if os.Geteuid() != 0 {
			return fmt.Errorf("must run as root: %s", why)
		}
		return nil
	}
}

// loadTopology reads -t FILE, or the embedded reference lab when no file
// is given.
func loadTopology(path string) (*topology.Topology, error) {
	if path == "" {
		return topology.Parse(labs.Reference, labs.ReferenceFile)
	}
	return topology.Load(path)
}
