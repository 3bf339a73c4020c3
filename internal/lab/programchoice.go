package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/topology"
)

// ProgramChoice is one of the programs `up` would put on a node, as
// `dsrlab test` picks one to run: the user's XDP or TC programs, dsrlab's
// balancer on a katran serving VIPs, and dsrlab's health-check
// encapsulation on the egress of a katran that checks reals.
type ProgramChoice struct {
	Node string
	Type ebpf.ProgramType // ebpf.XDP or ebpf.SchedCLS
	// Hook is where it runs: "xdp", or IFACE:DIRECTION:PRIORITY.
	Hook string
	// Name is the program's name in its object; "" for a user's program
	// the topology does not name (only its object does).
	Name string
	// File is its source or object's base name; "" for dsrlab's own.
	File string
	prog *topology.Program // nil for dsrlab's own
	vips []*topology.VIP   // dsrlab's balancer's
}

// String names the program and says where it runs, as the lists of an
// error show it.
func (c ProgramChoice) String() string {
	what := c.File
	if c.prog == nil {
		what = "dsrlab's"
	}
	if c.Name != "" {
		what = c.Name + ", " + what
	}
	return fmt.Sprintf("%s (%s)", c.Hook, what)
}

// ProgramChoices lists the programs of node n of t: its XDP program
// first, then its TC programs in the file's order, then dsrlab's health
// check.
func ProgramChoices(t *topology.Topology, n *topology.Node) []ProgramChoice {
	var out []ProgramChoice
	for _, p := range n.Programs() {
		c := ProgramChoice{Node: n.Name, Type: programType(p), Hook: "xdp", Name: p.Name, File: filepath.Base(p.File()), prog: p}
		if p.Type == topology.ProgramTC {
			c.Hook = tcHook(p.Interface.Name, p.Direction, p.Priority)
		}
		out = append(out, c)
	}
	if n.Program != nil || n.Kind != topology.KindKatran {
		return out
	}
	if vips := dsrVIPs(t.VIPsServedBy(n)); len(vips) > 0 {
		out = slices.Insert(out, 0, ProgramChoice{Node: n.Name, Type: ebpf.XDP, Hook: "xdp", Name: bpf.BalancerName, vips: vips})
	}
	if up := n.Uplink(); up != nil && len(health.Tunnels(t, n)) > 0 {
		out = append(out, ProgramChoice{Node: n.Name, Type: ebpf.SchedCLS, Hook: tcHook(up.Name, "egress", healthCheckPriority),
			Name: bpf.HealthCheckName})
	}
	return out
}

func tcHook(iface, direction string, priority int) string {
	return fmt.Sprintf("%s:%s:%d", iface, direction, priority)
}

// ProgramNodes names the nodes of t that run a program `dsrlab test` can
// load.
func ProgramNodes(t *topology.Topology) []string {
	var names []string
	for _, n := range t.Nodes {
		if len(ProgramChoices(t, n)) > 0 {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	return names
}

func programNodes(t *topology.Topology) string {
	if names := ProgramNodes(t); len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return "(none)"
}

// ChoiceError is a choice of program that names none, or several: the
// caller places it where the choice was made (a case file's program:,
// --program).
type ChoiceError struct{ Msg string }

func (e *ChoiceError) Error() string { return e.Msg }

func choiceErrorf(format string, args ...any) error {
	return &ChoiceError{Msg: fmt.Sprintf(format, args...)}
}

// ChooseProgram picks the program of node that which names: its hook
// ("xdp", IFACE:DIRECTION, IFACE:DIRECTION:PRIORITY, or "tc" for the
// only TC program), its name in its object, or its file's base name.
// Without a which, it is the node's XDP program, else its only program.
// An ambiguous or unmatched which is a *ChoiceError listing the programs
// there are.
func ChooseProgram(ctx context.Context, t *topology.Topology, node, which string) (ProgramChoice, error) {
	n := t.Node(node)
	if n == nil {
		return ProgramChoice{}, fmt.Errorf("lab %s has no node %q; nodes with a program: %s", t.Name, node, programNodes(t))
	}
	all := ProgramChoices(t, n)
	switch {
	case len(all) == 0:
		return ProgramChoice{}, fmt.Errorf("node %s runs no program in lab %s; nodes that do: %s", node, t.Name, programNodes(t))
	case which == "" && (all[0].Type == ebpf.XDP || len(all) == 1):
		return all[0], nil
	case which == "":
		return ProgramChoice{}, choiceErrorf("node %s has several TC programs and no XDP one: name one of %s", node, list(all))
	}
	match := func() []ProgramChoice {
		return slices.DeleteFunc(slices.Clone(all), func(c ProgramChoice) bool { return !c.is(which) })
	}
	found := match()
	if len(found) == 0 && slices.ContainsFunc(all, func(c ProgramChoice) bool { return c.Name == "" }) {
		// Its name in the object: compile to know it (cached).
		for i, c := range all {
			if c.Name != "" {
				continue
			}
			up, err := openUserProgram(ctx, t, c.prog, cacheDir())
			if err != nil {
				return ProgramChoice{}, err
			}
			all[i].Name = up.obj.Program.Name
		}
		found = match()
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return ProgramChoice{}, choiceErrorf("node %s has no program %q; its programs: %s", node, which, list(all))
	}
	return ProgramChoice{}, choiceErrorf("%q names %d programs of node %s: %s; name one by its hook", which, len(found), node, list(found))
}

// is tells whether which names c.
func (c ProgramChoice) is(which string) bool {
	if which == c.Hook || which == c.Name && c.Name != "" || which == c.File && c.File != "" {
		return true
	}
	if c.Type == ebpf.SchedCLS {
		if which == "tc" {
			return true
		}
		i := strings.LastIndexByte(c.Hook, ':')
		return which == c.Hook[:i]
	}
	return false
}

func list(cs []ProgramChoice) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.String())
	}
	return strings.Join(s, ", ")
}
