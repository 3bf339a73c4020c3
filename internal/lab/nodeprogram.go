package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/topology"
)

// NodeProgram is a program `up` would put on a node — the user's own XDP
// or TC program, dsrlab's balancer on a katran, or its health-check
// encapsulation — compiled and encoded once, to be loaded any number of
// times and attached nowhere: `dsrlab test` runs packets through a fresh
// copy per case. Each copy starts with the maps and globals `up` would
// give it, NODE:IFACE references resolved to the addresses and MACs the
// lab would have, so no container is needed.
//
// dsrlab's balancer is loaded once (its verification takes a good part
// of a second) and each further copy is that one with its connection
// table and counters cleared, which is the same state. Close releases
// it.
type NodeProgram struct {
	// Name is the program's name in its object.
	Name string
	// Type is ebpf.XDP or ebpf.SchedCLS (TC).
	Type ebpf.ProgramType
	// Spec describes the object's maps, by which their entries are read.
	Spec *ebpf.CollectionSpec
	topo *topology.Topology
	node *topology.Node
	user *userProgram // nil for dsrlab's programs
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

// OpenNodeProgram prepares the program c of lab t (ChooseProgram): it
// compiles a source, opens the object and encodes its maps and globals
// (errors placed in the topology file as `up` places them), or finds what
// dsrlab's own program would be given.
func OpenNodeProgram(ctx context.Context, t *topology.Topology, c ProgramChoice) (*NodeProgram, error) {
	np := &NodeProgram{Name: c.Name, Type: c.Type, topo: t, node: t.Node(c.Node), vips: c.vips}
	if c.prog != nil {
		up, err := openUserProgram(ctx, t, c.prog, cacheDir())
		if err != nil {
			return nil, err
		}
		np.Name, np.Spec, np.user = up.obj.Program.Name, up.obj.Spec, up
		return np, nil
	}
	var err error
	np.Spec, _, err = bpf.BuiltinSpec(c.Name)
	return np, err
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
	if p.Name == bpf.HealthCheckName {
		return p.loadHealthCheck()
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

// loadHealthCheck loads tc_healthcheck with the marks `up` gives it on
// the katran. It loads fast: no copy is kept between cases.
func (p *NodeProgram) loadHealthCheck() (*LoadedProgram, error) {
	hc, err := bpf.LoadHealthCheck()
	if err != nil {
		return nil, err
	}
	if _, err := hc.SetTunnels(healthCheckTunnels(p.topo, p.node)); err != nil {
		hc.Close()
		return nil, fmt.Errorf("node %s: %w", p.node.Name, err)
	}
	return &LoadedProgram{Program: hc.Program(), close: hc.Close}, nil
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
