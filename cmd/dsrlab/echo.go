//go:build linux

package main

import (
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/echo"
)

// newEchoCmd is the service reals run; dsrlab starts it inside the real's
// container, from the copy of itself in the node image.
func newEchoCmd() *cobra.Command {
	var node, addr, addr6 string
	var listen []string
	cmd := &cobra.Command{
		Use:    "echo",
		Short:  "Run the echo service of a real (started by `up` inside real containers)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := netip.ParseAddr(addr)
			if err != nil {
				return err
			}
			srv := &echo.Server{Node: node, Addr: a}
			if addr6 != "" {
				if srv.Addr6, err = netip.ParseAddr(addr6); err != nil {
					return err
				}
			}
			var ls []echo.Listener
			for _, s := range listen {
				l, err := echo.ParseListener(s)
				if err != nil {
					return err
				}
				ls = append(ls, l)
			}
			return srv.Serve(cmd.Context(), ls)
		},
	}
	cmd.Flags().StringVar(&node, "node", "real", "node name to put in answers")
	cmd.Flags().StringVar(&addr, "addr", "", "the real's own address to put in answers")
	// Every answer's header names the real's address: without one the
	// header would not parse.
	cmd.MarkFlagRequired("addr")
	cmd.Flags().StringVar(&addr6, "addr6", "", "the real's IPv6 address, named in answers to IPv6 clients")
	cmd.Flags().StringArrayVar(&listen, "listen", nil, "tcp/ADDR:PORT or udp/ADDR:PORT (repeatable)")
	return cmd
}
