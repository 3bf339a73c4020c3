//go:build linux

package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

func newVerifyCmd() *cobra.Command {
	var sel labSelector
	var format outputFormat
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove a running lab works: talk to every VIP from every client and show the DSR evidence",
		Long: "verify opens a connection from each client to each VIP, checks the answer, which real gave\n" +
			"it and that the real saw the client's own address, and compares the bytes the balancer\n" +
			"received with the bytes sent: requests cross it, replies must not. It exits non-zero if\n" +
			"any check fails.",
		Args:    cobra.NoArgs,
		PreRunE: requireRoot(rootForNamespaces),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := format.check(); err != nil {
				return err
			}
			var checks []lab.Check
			err := sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) (err error) {
				checks, err = lab.Verify(cmd.Context(), rts, topo)
				return err
			})
			if err != nil {
				return err
			}
			failed := 0
			for _, c := range checks {
				if !c.Pass {
					failed++
				}
			}
			w := cmd.OutOrStdout()
			if format == "json" {
				if err := writeJSON(w, checks); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VIP\tCLIENT\tLB\tANSWERED BY\tREAL SAW\tREPLY FROM\tLB RX / SENT\tREPLY PATH\tRESULT")
				for _, c := range checks {
					result := "PASS"
					switch {
					case c.Skipped:
						result = "SKIP: " + c.Reason
					case !c.Pass:
						result = "FAIL: " + c.Reason
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d / %d\t%s\t%s\n", c.VIP, c.Client, orDash(c.LB), orDash(c.Real), orDash(c.ClientSeen),
						orDash(c.ReplyFrom), c.LBBytes, c.Payload, orDash(c.Path), result)
				}
				tw.Flush()
				fmt.Fprintf(w, "%d checks, %d passed, %d failed\n", len(checks), len(checks)-failed, failed)
			}
			if failed > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	sel.flags(cmd)
	format.register(cmd)
	return cmd
}
