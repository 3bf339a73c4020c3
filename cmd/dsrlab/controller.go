//go:build linux

package main

import (
	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/topology"
)

// newControllerCmd is the lab's health check controller of one host: `up`
// runs it as the main process of a container of the node image (host
// network and PID namespaces; on this host with dsrlab's state directory
// mounted, on another as dsrlab's agent there), which the engine restarts
// if it crashes.
func newControllerCmd() *cobra.Command {
	var name, host string
	cmd := &cobra.Command{
		Use:    "controller",
		Short:  "Check a lab's reals and drain the failing ones (started by up inside the controller container)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &lab.Controller{Lab: name, Host: host, Namespace: lab.NamespaceByName, Log: cmd.ErrOrStderr()}
			if host != topology.LocalHost {
				// Another host's controller runs in dsrlab's agent there,
				// which has no names for the nodes' namespaces.
				c.Namespace = lab.RecordedNamespaces(name)
			}
			return c.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&name, "lab", "", "name of the lab")
	cmd.Flags().StringVar(&host, "host", topology.LocalHost, "the host whose katrans it checks")
	cmd.MarkFlagRequired("lab")
	return cmd
}
