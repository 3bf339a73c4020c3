//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/bpf/prog"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

func newMapCmd() *cobra.Command {
	var sel labSelector
	var format outputFormat
	cmd := &cobra.Command{
		Use:   "map NODE [MAP [set KEY VALUE | delete KEY]]",
		Short: "Show or change the maps of the XDP programs on a node, decoded by BTF",
		Long: "map dumps the maps of the XDP programs attached to a node's interfaces — your own\n" +
			"program's and dsrlab's built-in balancer and decap — with keys and values decoded by\n" +
			"the program's BTF: struct members by name, addresses and MACs as such, per-CPU values\n" +
			"per CPU and summed. set and delete change one entry, with the value syntax of the\n" +
			"topology's maps (YAML flow: `{real_server_ip: real:eth0, lb_vip: 192.168.10.1}`).",
		Example: "  dsrlab map katran\n" +
			"  dsrlab map katran lb_map --format json\n" +
			"  dsrlab map katran lb_map set 0 '{real_server_ip: real2:eth0}'\n" +
			"  dsrlab map katran reals delete 2",
		Args:              cobra.RangeArgs(1, 5),
		PreRunE:           requireRoot(rootForNamespaces),
		ValidArgsFunction: completeMapArgs(&sel),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			return sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) error {
				n := topo.Node(args[0])
				if n != nil && !n.Host.Local() {
					// Another host's kernel holds the maps: its
					// agent runs this command there.
					out, err := lab.RemoteMap(cmd.Context(), rts, topo, lab.MapRequest{Node: n.Name, Args: args[1:], Format: string(format)})
					fmt.Fprint(cmd.OutOrStdout(), out)
					return err
				}
				maps, err := lab.NodeMaps(cmd.Context(), rts, topo, args[0])
				if err != nil {
					return err
				}
				defer closeMaps(maps)
				return mapOp(cmd.OutOrStdout(), format, topo, args[0], maps, args[1:])
			})
		},
	}
	sel.flags(cmd)
	format.register(cmd)
	return cmd
}

// mapOp dumps a node's maps, or sets or deletes one entry: args are
// what follows NODE on the command line.
func mapOp(w io.Writer, format outputFormat, topo *topology.Topology, node string, maps []*prog.Map, args []string) error {
	if len(args) <= 1 {
		return dumpMaps(w, format, node, maps, args)
	}
	m, err := findMap(node, maps, args[0])
	if err != nil {
		return err
	}
	switch {
	case args[1] == "set" && len(args) == 4:
		return m.Set(args[2], args[3], lab.Resolver(topo))
	case args[1] == "delete" && len(args) == 3:
		return m.Delete(args[2])
	}
	return fmt.Errorf("want `map NODE MAP set KEY VALUE` or `map NODE MAP delete KEY`, got %q", strings.Join(append([]string{node}, args...), " "))
}

// agentMap is `dsrlab map` as the agent runs it on a node of its host.
func agentMap(req lab.AgentRequest) *lab.AgentResult {
	res := &lab.AgentResult{}
	topo, maps, err := lab.AgentMaps(req)
	if err == nil {
		defer closeMaps(maps)
		var out strings.Builder
		err = mapOp(&out, outputFormat(req.Map.Format), topo, req.Map.Node, maps, req.Map.Args)
		res.Output = out.String()
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

func closeMaps(maps []*prog.Map) {
	for _, m := range maps {
		m.Close()
	}
}

func findMap(node string, maps []*prog.Map, name string) (*prog.Map, error) {
	var names []string
	for _, m := range maps {
		if m.Name == name {
			return m, nil
		}
		names = append(names, m.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("node %s has no XDP program with maps", node)
	}
	return nil, fmt.Errorf("node %s has no map %q (its maps: %s)", node, name, strings.Join(names, ", "))
}

// mapDump is one map in `map --format json`.
type mapDump struct {
	Name    string           `json:"name"`
	ID      uint32           `json:"id"`
	Type    string           `json:"type"`
	Entries []prog.DumpEntry `json:"entries"`
}

func dumpMaps(w io.Writer, format outputFormat, node string, maps []*prog.Map, only []string) error {
	if len(only) == 1 {
		m, err := findMap(node, maps, only[0])
		if err != nil {
			return err
		}
		maps = []*prog.Map{m}
	}
	var dumps []mapDump
	for _, m := range maps {
		entries, err := m.Dump()
		if err != nil {
			return err
		}
		dumps = append(dumps, mapDump{Name: m.Name, ID: uint32(m.ID), Type: m.Type().String(), Entries: entries})
	}
	if format == "json" {
		return writeJSON(w, dumps)
	}
	for i, d := range dumps {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (%s, id %d): %d entries\n", d.Name, d.Type, d.ID, len(d.Entries))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range d.Entries {
			fmt.Fprintf(tw, "  %s\t%s\n", e.Key, e.ValueString())
		}
		tw.Flush()
	}
	return nil
}

// completeMapArgs completes the node, then the map names of the lab's
// recorded topology (nodes) and its running programs (maps).
func completeMapArgs(sel *labSelector) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		var out []string
		_ = sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) error {
			switch len(args) {
			case 0:
				for _, n := range topo.Nodes {
					out = append(out, n.Name)
				}
			case 1:
				maps, err := lab.NodeMaps(cmd.Context(), rts, topo, args[0])
				if err != nil {
					return err
				}
				for _, m := range maps {
					out = append(out, m.Name)
					m.Close()
				}
			case 2:
				out = []string{"set", "delete"}
			}
			return nil
		})
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
