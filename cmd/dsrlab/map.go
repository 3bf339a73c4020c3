//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cilium/ebpf"
	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/bpf/prog"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

func newMapCmd() *cobra.Command {
	var sel labSelector
	var format outputFormat
	var opts mapOptions
	cmd := &cobra.Command{
		Use:   "map NODE [MAP [get KEY | set KEY VALUE | delete KEY]]",
		Short: "List, read or change the maps of the XDP and TC programs on a node, decoded by BTF",
		Long: "map NODE lists the maps of the XDP and TC programs attached to a node's interfaces — your own\n" +
			"program's and dsrlab's built-in balancer and decap — with their type, key and value types,\n" +
			"size and entries in use. map NODE MAP shows a map's entries decoded by the program's BTF:\n" +
			"struct members by name, addresses and MACs as such, fields as the topology wrote them\n" +
			"(!be for network order, a union by the member used), per-CPU values per CPU and summed.\n" +
			"An array's zero entries are left out unless --all; --limit stops after N entries; Ctrl-C\n" +
			"stops a long read at once. get reads one entry, set and delete change one, with the value\n" +
			"syntax of the topology's maps (YAML flow: `{real_server_ip: real:eth0, port: !be 50007}`).",
		Example: "  dsrlab map katran\n" +
			"  dsrlab map katran lb_map --format json\n" +
			"  dsrlab map katran server_id_map --limit 20\n" +
			"  dsrlab map katran reals get 2\n" +
			"  dsrlab map katran lb_map set 0 '{real_server_ip: real2:eth0}'\n" +
			"  dsrlab map katran reals delete 2",
		Args:              cobra.RangeArgs(1, 5),
		PreRunE:           requireRoot(rootForNamespaces),
		ValidArgsFunction: completeMapArgs(&sel),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			if opts.Limit < 0 {
				return fmt.Errorf("--limit %d: want a number of entries, or 0 for all", opts.Limit)
			}
			ctx := cmd.Context()
			return sel.withTopology(ctx, func(rts runtime.Set, topo *topology.Topology) error {
				n := topo.Node(args[0])
				if n != nil && !n.Host.Local() {
					// Another host's kernel holds the maps: its
					// agent runs this command there.
					out, err := lab.RemoteMap(ctx, rts, topo, lab.MapRequest{Node: n.Name, Args: args[1:], Format: string(format),
						All: opts.All, Limit: opts.Limit})
					fmt.Fprint(cmd.OutOrStdout(), out)
					return err
				}
				maps, err := lab.NodeMaps(ctx, rts, topo, args[0])
				if err != nil {
					return err
				}
				defer closeMaps(maps)
				opts.format = format
				return mapOp(ctx, cmd.OutOrStdout(), opts, topo, args[0], maps, args[1:])
			})
		},
	}
	sel.flags(cmd)
	format.register(cmd)
	cmd.Flags().BoolVar(&opts.All, "all", false, "show an array's zero entries too")
	cmd.Flags().IntVar(&opts.Limit, "limit", 0, "show at most N entries of a map (0: all)")
	return cmd
}

type mapOptions struct {
	prog.DumpOptions
	format outputFormat
}

// mapOp lists a node's maps, shows one, or reads, sets or deletes one
// entry: args are what follows NODE on the command line.
func mapOp(ctx context.Context, w io.Writer, opts mapOptions, topo *topology.Topology, node string, maps []*prog.Map, args []string) error {
	if len(maps) == 0 {
		return fmt.Errorf("node %s has no XDP or TC program with maps (map shows the maps of the programs on a node's interfaces: your own, katran's balancer, a real's decap)", node)
	}
	if len(args) == 0 {
		return listMaps(ctx, w, opts.format, maps)
	}
	m, err := findMap(node, maps, args[0])
	if err != nil {
		return err
	}
	switch {
	case len(args) == 1:
		return dumpMap(ctx, w, opts, m)
	case args[1] == "get" && len(args) == 3:
		e, err := m.Get(args[2], lab.Resolver(topo))
		if err != nil {
			return err
		}
		if opts.format == "json" {
			return writeJSON(w, e)
		}
		_, err = fmt.Fprintln(w, e.ValueString())
		return err
	case args[1] == "set" && len(args) == 4:
		return m.Set(args[2], args[3], lab.Resolver(topo))
	case args[1] == "delete" && len(args) == 3:
		return m.Delete(args[2])
	}
	return fmt.Errorf("want `map NODE MAP get KEY`, `map NODE MAP set KEY VALUE` or `map NODE MAP delete KEY`, got %q", strings.Join(append([]string{node}, args...), " "))
}

// agentMap is `dsrlab map` as the agent runs it on a node of its host.
func agentMap(ctx context.Context, req lab.AgentRequest) *lab.AgentResult {
	res := &lab.AgentResult{}
	topo, maps, err := lab.AgentMaps(req)
	if err == nil {
		defer closeMaps(maps)
		var out strings.Builder
		opts := mapOptions{DumpOptions: prog.DumpOptions{All: req.Map.All, Limit: req.Map.Limit}, format: outputFormat(req.Map.Format)}
		err = mapOp(ctx, &out, opts, topo, req.Map.Node, maps, req.Map.Args)
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
	return nil, fmt.Errorf("node %s has no map %q (its maps: %s)", node, name, strings.Join(names, ", "))
}

// listMaps is `map NODE`: what each map is and how full, never its
// entries (a map may hold millions).
func listMaps(ctx context.Context, w io.Writer, format outputFormat, maps []*prog.Map) error {
	infos := make([]prog.Info, 0, len(maps))
	for _, m := range maps {
		in, err := m.Info(ctx)
		if err != nil {
			return err
		}
		infos = append(infos, in)
	}
	if format == "json" {
		return writeJSON(w, infos)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAP\tTYPE\tKEY\tVALUE\tMAX\tIN USE\tID")
	for _, in := range infos {
		used := "-"
		if in.InUse != nil {
			used = fmt.Sprint(*in.InUse)
			if in.AtLeast {
				used = "≥" + used
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\n", in.Name, in.Type, in.Key, in.Value, in.MaxEntries, used, in.ID)
	}
	return tw.Flush()
}

// mapDump is one map in `map NODE MAP --format json`.
type mapDump struct {
	Name    string           `json:"name"`
	ID      uint32           `json:"id"`
	Type    string           `json:"type"`
	Entries []prog.DumpEntry `json:"entries"`
	// More says --limit left entries out.
	More bool `json:"more,omitempty"`
}

func dumpMap(ctx context.Context, w io.Writer, opts mapOptions, m *prog.Map) error {
	entries, more, err := m.Dump(ctx, opts.DumpOptions)
	if err != nil {
		return err
	}
	d := mapDump{Name: m.Name, ID: uint32(m.ID), Type: m.Type().String(), Entries: entries, More: more}
	if opts.format == "json" {
		return writeJSON(w, d)
	}
	what := "entries"
	if m.Type() == ebpf.Array || m.Type() == ebpf.PerCPUArray {
		if !opts.All {
			what = "non-zero entries (--all shows the others)"
		}
	}
	if more {
		what += fmt.Sprintf(", the first %d shown (--limit)", opts.Limit)
	}
	fmt.Fprintf(w, "%s (%s, id %d): %d %s\n", d.Name, d.Type, d.ID, len(d.Entries), what)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range d.Entries {
		fmt.Fprintf(tw, "  %s\t%s\n", e.Key, e.ValueString())
	}
	return tw.Flush()
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
				out = []string{"get", "set", "delete"}
			}
			return nil
		})
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
