//go:build linux

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// newRealCmd changes a running lab's reals through the balancer's maps: the
// program is not reloaded and established flows keep their real (except
// those of a removed real, which are re-balanced).
func newRealCmd(out *output) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "real",
		Short: "Add, drain or remove a real of a VIP in a running lab, without dropping established flows",
		Long: "real changes which reals serve a VIP of a running lab and with what weight. The change is\n" +
			"written into the running balancer's maps (its Maglev ring) and recorded for the lab.\n" +
			"  add     make NODE a real of VIP, or change its weight (--weight, default 1)\n" +
			"  drain   weight 0: new flows go to the other reals, established ones finish on NODE\n" +
			"  remove  NODE leaves the VIP; even its established flows move to the other reals",
		Example: "  dsrlab real drain 192.168.10.1:50007 real2\n  dsrlab real add --weight 2 192.168.10.1:50007 real2",
	}
	var weight uint32
	add := realOp(out, "add VIP NODE", "Make NODE a real of VIP (or set its weight)", func(t *topology.Topology, v *topology.VIP, node string) error {
		return lab.SetRealWeight(t, v, node, weight)
	})
	add.Flags().Uint32Var(&weight, "weight", topology.DefaultWeight, "share of new flows relative to the VIP's other reals")
	cmd.AddCommand(
		add,
		realOp(out, "drain VIP NODE", "Send NODE no new flows of VIP (weight 0); established ones finish", func(t *topology.Topology, v *topology.VIP, node string) error {
			return lab.SetRealWeight(t, v, node, 0)
		}),
		realOp(out, "remove VIP NODE", "Take NODE out of VIP; its flows move to the other reals", lab.RemoveReal),
	)
	return cmd
}

func realOp(out *output, use, short string, change func(*topology.Topology, *topology.VIP, string) error) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Args:    cobra.ExactArgs(2),
		PreRunE: requireRoot(rootForNamespaces),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel := labSelector{name: name}
			return sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) error {
				unlock, err := lab.Lock(topo.Name)
				if err != nil {
					return err
				}
				defer unlock()
				v, err := lab.FindVIP(topo, args[0])
				if err != nil {
					return err
				}
				if err := change(topo, v, args[1]); err != nil {
					return err
				}
				// Up applies the difference: maps for the balancer, and the
				// VIP, decapsulation and echo service on a real new to v.
				sum, err := lab.Up(cmd.Context(), rts, topo, out.reporter(cmd))
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "VIP %s reals: %s (%d changes)\n", v, realsString(v), sum.Changes)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the lab (default: the only lab that is up)")
	return cmd
}

func realsString(v *topology.VIP) string {
	s := ""
	for i, r := range v.Reals {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s (weight %d)", r.Node.Name, r.Weight)
	}
	return s
}
