package lab

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/topology"
)

// NodeProgram is the XDP program `up` would put on a node — the user's
// own, or dsrlab's balancer on a katran — compiled and encoded once, to be
// loaded any number of times and attached nowhere: `dsrlab test` runs
// packets through a fresh copy per case. Each copy starts with the maps
// and globals `up` would give it, NODE:IFACE references resolved to the
// addresses and MACs the lab would have, so no container is needed.
//
// dsrlab's balancer is loaded once (its verification takes a good part
// of a second) and each further copy is that one with its connection
// table and counters cleared, which is the same state. Close releases
// it.
type NodeProgram struct {
	// Name is the program's name in its object.
	Name string
	// Spec describes the object's maps, by which their entries are read.
	Spec *ebpf.CollectionSpec
	topo *topology.Topology
	node *topology.Node
	user *userProgram // nil for dsrlab's balancer
	vips []*topology.VIP
	lb   *bpf.Balancer // loaded by the first Load
}

// LoadedProgram is one copy of a NodeProgram in the kernel.
type LoadedProgram struct {
	Program *ebpf.Program
	close   func() error
}

// Close unloads the copy.
func (l *LoadedProgram) Close() error { return l.close() }

// OpenNodeProgram prepares the program of node: it compiles a source,
// opens the object and encodes its maps and globals (errors placed in the
// topology file as `up` places them), or finds the VIPs dsrlab's balancer
// would serve.
func OpenNodeProgram(ctx context.Context, t *topology.Topology, node string) (*NodeProgram, error) {
	n := t.Node(node)
	if n == nil {
		return nil, fmt.Errorf("lab %s has no node %q; nodes with an XDP program: %s", t.Name, node, programNodes(t))
	}
	if n.Program != nil {
		up, err := openUserProgram(ctx, t, n.Program, cacheDir())
		if err != nil {
			return nil, err
		}
		return &NodeProgram{Name: up.obj.Program.Name, Spec: up.obj.Spec, topo: t, node: n, user: up}, nil
	}
	vips := dsrVIPs(t.VIPsServedBy(n))
	if n.Kind != topology.KindKatran || len(vips) == 0 {
		return nil, fmt.Errorf("node %s runs no XDP program in lab %s; nodes that do: %s", node, t.Name, programNodes(t))
	}
	spec, _, err := bpf.BuiltinSpec(bpf.BalancerName)
	if err != nil {
		return nil, err
	}
	return &NodeProgram{Name: bpf.BalancerName, Spec: spec, topo: t, node: n, vips: vips}, nil
}

// ProgramNodes names the nodes of t that run an XDP program `dsrlab test`
// can load: the users' own, and katrans with dsrlab's balancer.
func ProgramNodes(t *topology.Topology) []string {
	var names []string
	for _, n := range t.Nodes {
		if n.Program != nil || n.Kind == topology.KindKatran && len(dsrVIPs(t.VIPsServedBy(n))) > 0 {
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

// Load loads a fresh copy of the program with its maps filled, as `up`
// fills them before attaching.
func (p *NodeProgram) Load() (*LoadedProgram, error) {
	if p.user != nil {
		if err := p.user.load(); err != nil {
			return nil, err
		}
		l := p.user.loaded
		p.user.loaded = nil
		return &LoadedProgram{Program: l.Program, close: l.Close}, nil
	}
	keep := &LoadedProgram{close: func() error { return nil }}
	if p.lb != nil {
		if err := p.lb.ForgetTraffic(); err != nil {
			return nil, err
		}
		keep.Program = p.lb.Program()
		return keep, nil
	}
	lb, err := bpf.LoadBalancer(bpf.Options{})
	if err != nil {
		return nil, err
	}
	d := &deployment{topo: p.topo, rep: silent{}, sum: &Summary{}}
	if _, err := d.programVIPs(lb, p.node.Uplink(), p.vips); err != nil {
		lb.Close()
		return nil, fmt.Errorf("node %s: %w", p.node.Name, err)
	}
	p.lb = lb
	keep.Program = lb.Program()
	return keep, nil
}

// Close releases what Load kept loaded.
func (p *NodeProgram) Close() error {
	if p.lb != nil {
		return p.lb.Close()
	}
	return nil
}

// silent is the Reporter of a deployment nobody watches.
type silent struct{}

func (silent) Step(string, time.Duration, string, error) {}
func (silent) Detail(string, string)                     {}
func (silent) Note(string)                               {}
func (silent) Progress(string, int, int)                 {}
