//go:build linux

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/internal/trace"
	"github.com/dsrlab/dsrlab/topology"
)

func newTraceCmd(out *output) *cobra.Command {
	var sel labSelector
	var from, proto, format string
	// Set when dsrlab's agent watches this host for a trace run on
	// another: the request and commands come on standard input.
	var watch bool
	cmd := &cobra.Command{
		Use:   "trace [VIP[:PORT]] [--from NODE] [--proto tcp|udp] [--format table|json|mermaid]",
		Short: "Follow one probe flow hop by hop through a running lab, and say where and why it stopped",
		Long: "trace captures on every interface of the lab at once, sends one probe flow from a client to a\n" +
			"VIP (a TCP connection that sends one line and reads the answer, or one UDP datagram) and prints\n" +
			"the flow's packets in order, one line per hop, named like the reference README's steps\n" +
			"(Request, Forward, IPIP Encap, Forward IPIP, DSR Reply, Return; for NAT VIPs DNAT + SNAT, Reply,\n" +
			"Hair-pin, Final Reply): the link, whether the packet was seen leaving (out) and arriving (in),\n" +
			"addresses, ports and TCP flags, the outer and inner headers of IPIP packets, MACs with -v.\n" +
			"A veth shows each packet twice, leaving one node and entering the next: trace makes them one hop.\n" +
			"\n" +
			"XDP programs act before packet sockets see a frame: a frame that an XDP program sends back out of\n" +
			"its interface (XDP_TX, as the balancer does) is never seen on that interface, only arriving at\n" +
			"the peer, and one it drops is seen only leaving the sender. The IPIP Encap hop is therefore\n" +
			"observed on the router's side of the balancer's link.\n" +
			"\n" +
			"While the probe runs, a BPF program on the skb:kfree_skb tracepoint reports the packets the\n" +
			"kernel drops in the lab's namespaces, with the kernel's drop reason (names read from the running\n" +
			"kernel's BTF), and one on xdp:xdp_exception reports XDP programs that returned XDP_ABORTED.\n" +
			"\n" +
			"On a lab that spans several hosts, each host is watched where it is: this host's nodes by this\n" +
			"process, another host's by dsrlab's agent there (which `dsrlab up` starts), which sends back what\n" +
			"it saw; the probe runs on the client's host. A drop is named by the kernel that dropped it. A link\n" +
			"between hosts (VXLAN) reads like any other. Each host stamps packets by its own clock, and two\n" +
			"machines' clocks may differ by more than a packet takes through the lab: trace puts every time on\n" +
			"this host's clock by the packets that crossed between hosts. With crossings both ways (request\n" +
			"and reply), another host's offset is the midpoint of the fastest crossing each way, as NTP takes\n" +
			"it (both ways assumed equally fast); with crossings one way only, the fastest is taken as\n" +
			"instantaneous. Times across hosts are then as good as the link's latency (tens of microseconds),\n" +
			"no packet arrives before it left, and the hops keep the order the flow took.\n" +
			"\n" +
			"The verdict ends the output. Exit code 0: the answer arrived and the reply never crossed the load\n" +
			"balancer (direct return), or, for a NAT VIP, it arrived through the balancer as NAT does\n" +
			"(hair-pin). Otherwise 1, naming the last place the flow was seen, what should have happened\n" +
			"next, and what the kernel dropped.\n" +
			"\n" +
			"Without arguments: the lab's first VIP, from its first client.",
		Example: "  dsrlab trace\n" +
			"  dsrlab trace 192.168.10.2:50008 --proto udp --name dsr3\n" +
			"  dsrlab trace --format mermaid > flow.mmd",
		Args:    cobra.MaximumNArgs(1),
		PreRunE: requireRoot(rootForNamespaces),
		RunE: func(cmd *cobra.Command, args []string) error {
			if watch {
				return trace.Serve(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout())
			}
			switch format {
			case "table", "json", "mermaid":
			default:
				return fmt.Errorf("--format %q: want table, json or mermaid", format)
			}
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			var res *trace.Result
			err := sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) error {
				opt, err := trace.Select(topo, target, from, proto)
				if err != nil {
					return err
				}
				res, err = trace.Run(cmd.Context(), rts, topo, opt)
				return err
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch format {
			case "json":
				err = res.JSON(w)
			case "mermaid":
				err = res.Mermaid(w)
			default:
				err = res.Table(w, out.verbose)
			}
			if err != nil {
				return err
			}
			if !res.Verdict.Pass {
				return exitError{code: 1}
			}
			return nil
		},
	}
	sel.flags(cmd)
	cmd.Flags().StringVar(&from, "from", "", "node to probe from (default: the lab's first client)")
	cmd.Flags().StringVar(&proto, "proto", "", "tcp or udp: pick the VIP of that protocol")
	cmd.Flags().StringVar(&format, "format", "table", "table, json or mermaid (a sequence diagram of the observed packets)")
	cmd.Flags().BoolVar(&watch, "watch", false, "")
	cmd.Flags().MarkHidden("watch")
	return cmd
}
