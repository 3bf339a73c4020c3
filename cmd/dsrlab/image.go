//go:build linux

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/topology"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage the default node image"}
	var tag string
	build := &cobra.Command{
		Use:   "build",
		Short: "Build the default node image from the host's static busybox and this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rt, closeRT, err := openRuntime()
			if err != nil {
				return err
			}
			defer closeRT()
			if err := rt.Ping(cmd.Context()); err != nil {
				return err
			}
			if _, err := image.Ensure(cmd.Context(), rt, tag, true); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s\n", tag)
			return nil
		},
	}
	build.Flags().StringVar(&tag, "tag", topology.DefaultImage, "image tag")
	cmd.AddCommand(build)
	return cmd
}
