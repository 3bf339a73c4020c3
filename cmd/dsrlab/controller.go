//go:build linux

package main

import (
	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
)

// newControllerCmd is the lab's health check controller: `up` runs it as
// the main process of a container of the node image (host network and PID
// namespaces, the lab's state directory mounted), which the engine
// restarts if it crashes.
func newControllerCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:    "controller",
		Short:  "Check a lab's reals and drain the failing ones (started by up inside the controller container)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &lab.Controller{Lab: name, Namespace: lab.NamespaceByName, Log: cmd.ErrOrStderr()}
			return c.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&name, "lab", "", "name of the lab")
	cmd.MarkFlagRequired("lab")
	return cmd
}
