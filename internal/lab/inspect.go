package lab

import (
	"context"
	"fmt"
	"github.com/cilium/ebpf"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/nat"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// LabReport is a running lab as Docker and the kernel see it, with every
// difference from the topology it was brought up from.
type LabReport struct {
	Lab      string       `json:"lab"`
	Topology string       `json:"topology,omitempty"`
	Nodes    []NodeReport `json:"nodes"`
	Problems []string     `json:"problems"`
}

// NodeReport is one container and its network namespace.
type NodeReport struct {
	Node       string              `json:"node"`
	Kind       string              `json:"kind"`
	Host       string              `json:"host"`
	Container  string              `json:"container"`
	State      string              `json:"state"`
	Image      string              `json:"image"`
	Interfaces []netconf.Interface `json:"interfaces,omitempty"`
	Gateways   []string            `json:"gateways,omitempty"` // of the default routes, IPv4 and IPv6
	Balancer   *BalancerReport     `json:"balancer,omitempty"`
	Programs   []ProgramReport     `json:"programs,omitempty"`
	NAT        []string            `json:"nat,omitempty"` // nftables services, "tcp 192.168.10.1:50007"
	Decap      string              `json:"decap,omitempty"`
	Loopback   []string            `json:"loopback_vips,omitempty"`
	// Health is a katran's view of the reals it checks (health.json).
	Health []health.Real `json:"health,omitempty"`
}

// BalancerReport is the XDP balancer attached to a katran, read back from
// its maps.
type BalancerReport struct {
	Interface string      `json:"interface"`
	ProgID    uint32      `json:"prog_id"`
	Mode      string      `json:"mode"`
	VIPs      []VIPReport `json:"vips"`
}

// ProgramReport is an XDP program attached to one of a node's interfaces:
// dsrlab's own, or the user's (with the file it came from).
type ProgramReport struct {
	Interface string `json:"interface"`
	Name      string `json:"name"`
	ID        uint32 `json:"id"`
	Tag       string `json:"tag"`
	Mode      string `json:"mode"`
	File      string `json:"file,omitempty"`
}

// VIPReport is one VIP as the balancer's maps hold it.
type VIPReport struct {
	VIP   string     `json:"vip"`
	Reals []bpf.Real `json:"reals"`
}

// Labs lists the names of every lab that has containers.
func Labs(ctx context.Context, rt runtime.Runtime) ([]string, error) {
	list, err := rt.List(ctx, map[string]string{})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var names []string
	for _, c := range list {
		if lab := c.Labels[LabelLab]; lab != "" && !seen[lab] {
			seen[lab] = true
			names = append(names, lab)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Inspect reads a lab back from its engines and the kernel and compares it
// with the topology recorded when it was brought up (when there is one).
// Nodes on other hosts are read there by dsrlab's agent.
func Inspect(ctx context.Context, rts runtime.Set, name string) (*LabReport, error) {
	if err := topology.ValidLabName(name); err != nil {
		return nil, err
	}
	topo, stateErr := LoadState(name)
	rep := &LabReport{Lab: name, Problems: []string{}}
	if stateErr != nil {
		rep.Problems = append(rep.Problems, stateErr.Error())
	}
	// The controller that runs on each host: on this one its own
	// container, on another dsrlab's agent there.
	controllerRuns := map[string]bool{}
	for _, h := range slices.Sorted(maps.Keys(rts)) {
		list, err := rts[h].List(ctx, map[string]string{LabelLab: name})
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h, err)
		}
		var remote []runtime.Container
		for _, c := range list {
			if r := c.Labels[LabelRole]; c.Running() && (r == roleController && h == topology.LocalHost || r == roleAgent) {
				controllerRuns[h] = true
			}
			if c.Labels[LabelRole] != "" { // dsrlab's own: an agent, a controller
				continue
			}
			rep.Topology = c.Labels[LabelTopology]
			full, err := rts[h].Inspect(ctx, c.ID)
			if err != nil {
				return nil, err
			}
			if h != topology.LocalHost && full.Running() {
				remote = append(remote, *full)
				continue
			}
			nr, err := inspectNode(ctx, rts[h], h, full)
			if err != nil {
				return nil, err
			}
			rep.Nodes = append(rep.Nodes, *nr)
		}
		if len(remote) > 0 {
			if topo == nil {
				return nil, fmt.Errorf("lab %q has containers on host %s but no recorded topology to reach them by", name, h)
			}
			res, err := agentOp(ctx, rts, topo, h, AgentRequest{Phase: phaseInspect, Containers: remote})
			if err != nil {
				return nil, fmt.Errorf("host %s: %w", h, err)
			}
			rep.Nodes = append(rep.Nodes, res.Nodes...)
		}
	}
	if len(rep.Nodes) == 0 {
		return nil, fmt.Errorf("lab %q is not up (no containers carry its label)", name)
	}
	// The files of users' programs are in this host's state, wherever
	// the programs run; the health of reals checked from this host too
	// (another host's agent filled in its own).
	st, err := health.ReadState(labDir(name))
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	for i := range rep.Nodes {
		nr := &rep.Nodes[i]
		if nr.Host == topology.LocalHost {
			nr.Health = st.OfKatran(nr.Node)
		}
		if rec, err := loadProgramRecord(name, nr.Node); err == nil {
			for j := range nr.Programs {
				if pr := &nr.Programs[j]; !strings.HasPrefix(pr.Mode, "tc ") && bpf.NameIs(pr.Name, rec.Name) {
					pr.File = rec.File
				}
			}
		}
		recs, _ := tcRecords(name, nr.Node)
		for j := range nr.Programs {
			pr := &nr.Programs[j]
			for _, rec := range recs {
				if pr.Interface == rec.Interface && pr.Name == rec.Name && pr.Mode == fmt.Sprintf("tc %s priority %d", rec.Direction, rec.Priority) {
					pr.File = rec.File
				}
			}
		}
	}
	if topo != nil {
		byNode := map[string]*NodeReport{}
		for i := range rep.Nodes {
			byNode[rep.Nodes[i].Node] = &rep.Nodes[i]
		}
		rep.Problems = append(rep.Problems, compare(topo, byNode)...)
		for _, h := range HostsInUse(topo) {
			if !checksOn(topo, h) || controllerRuns[h] {
				continue
			}
			name := controllerName(topo)
			if h != topology.LocalHost {
				name = agentName(topo, h)
			}
			rep.Problems = append(rep.Problems, fmt.Sprintf("katrans on host %s check reals but their controller %s is not running: `dsrlab up` starts it", h, name))
		}
	}
	return rep, nil
}

// inspectNode reads a local container (full, as the engine reports it)
// and its namespace.
func inspectNode(ctx context.Context, rt runtime.Runtime, host string, full *runtime.Container) (*NodeReport, error) {
	nr := containerReport(host, full)
	if !full.Running() {
		return nr, nil
	}
	ns, err := rt.Namespace(ctx, full.ID)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", nr.Node, err)
	}
	defer ns.Close()
	return nr, readNamespace(nr, ns)
}

func containerReport(host string, c *runtime.Container) *NodeReport {
	return &NodeReport{Node: c.Labels[LabelNode], Kind: c.Labels[LabelKind], Host: host, Container: c.Name, State: c.State, Image: c.Image}
}

// readNamespace fills a node's report from its network namespace.
func readNamespace(nr *NodeReport, ns *netconf.Namespace) (err error) {
	if nr.Interfaces, err = ns.Interfaces(); err != nil {
		return err
	}
	gws, err := ns.DefaultGateways()
	if err != nil {
		return err
	}
	for _, gw := range gws {
		nr.Gateways = append(nr.Gateways, gw.String())
	}
	services, err := nat.Rules(ns.FD())
	if err != nil {
		return err
	}
	for _, s := range services {
		nr.NAT = append(nr.NAT, s.String())
	}
	for _, i := range nr.Interfaces {
		switch {
		case i.Name == "lo":
			for _, a := range i.Addrs {
				if a.Bits() == a.Addr().BitLen() && !a.Addr().IsLoopback() {
					nr.Loopback = append(nr.Loopback, a.Addr().String())
				}
			}
		case i.Name == ipipDevice:
			nr.Decap = ipipDecap
		case i.XDP.ProgID != 0:
			if err := describeProgram(nr, ns, i); err != nil {
				return err
			}
		}
		if err := describeTC(nr, ns, i.Name); err != nil {
			return err
		}
	}
	return nil
}

// describeTC reports the TC programs on an interface's hooks.
func describeTC(nr *NodeReport, ns *netconf.Namespace, iface string) error {
	atts, err := ns.TC(iface)
	if err != nil {
		return fmt.Errorf("node %s: %w", nr.Node, err)
	}
	for _, a := range atts {
		pr := ProgramReport{Interface: iface, Name: a.Name, ID: a.ProgID, Mode: fmt.Sprintf("tc %s priority %d", a.Direction(), a.Priority)}
		if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(a.ProgID)); err == nil {
			if info, err := p.Info(); err == nil {
				pr.Tag = info.Tag
			}
			p.Close()
		}
		nr.Programs = append(nr.Programs, pr)
	}
	return nil
}

// describeProgram reports the program on an interface, and recognises
// dsrlab's own by name: the balancer's VIPs are read from its maps.
func describeProgram(nr *NodeReport, ns *netconf.Namespace, i netconf.Interface) error {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(i.XDP.ProgID))
	if err != nil {
		return fmt.Errorf("node %s: %s: XDP program %d: %w", nr.Node, i.Name, i.XDP.ProgID, err)
	}
	info, err := p.Info()
	p.Close()
	if err != nil {
		return fmt.Errorf("node %s: %s: XDP program %d: %w", nr.Node, i.Name, i.XDP.ProgID, err)
	}
	nr.Programs = append(nr.Programs, ProgramReport{Interface: i.Name, Name: info.Name, ID: i.XDP.ProgID, Tag: info.Tag, Mode: i.XDP.Mode.String()})
	switch info.Name {
	case bpf.BalancerName:
		lb, _, err := openBalancer(ns, i.Name)
		if err != nil {
			return err
		}
		defer lb.Close()
		vips, err := lb.VIPs()
		if err != nil {
			return err
		}
		br := &BalancerReport{Interface: i.Name, ProgID: i.XDP.ProgID, Mode: i.XDP.Mode.String()}
		for v, reals := range vips {
			br.VIPs = append(br.VIPs, VIPReport{VIP: v.String(), Reals: reals})
		}
		sort.Slice(br.VIPs, func(a, b int) bool { return br.VIPs[a].VIP < br.VIPs[b].VIP })
		nr.Balancer = br
	case bpf.DecapName:
		nr.Decap = xdpDecap(i.XDP.Mode, i.Name)
	}
	return nil
}

// compare lists what the recorded topology says should be there and is
// not, each with what to do about it.
func compare(topo *topology.Topology, nodes map[string]*NodeReport) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, n := range topo.Nodes {
		nr := nodes[n.Name]
		switch {
		case nr == nil:
			add("node %s: no container; `dsrlab up` recreates it", n.Name)
			continue
		case nr.State != "running":
			add("node %s: container %s is %s; `dsrlab up` starts and re-wires it", n.Name, nr.Container, nr.State)
			continue
		}
		for _, want := range n.Interfaces {
			got := findInterface(nr.Interfaces, want.Name)
			switch {
			case got == nil:
				add("node %s: interface %s is missing (container restarted?); `dsrlab up` re-wires it", n.Name, want.Name)
			default:
				for _, a := range []netip.Prefix{want.Addr, want.Addr6} {
					if a.IsValid() && !slices.Contains(got.Addrs, a) {
						add("node %s: interface %s lacks %s", n.Name, want.Name, a)
					}
				}
			}
		}
		for _, p := range n.TC {
			mode := fmt.Sprintf("tc %s priority %d", p.Direction, p.Priority)
			if !slices.ContainsFunc(nr.Programs, func(r ProgramReport) bool {
				return r.Interface == p.Interface.Name && r.Mode == mode && r.File == p.File()
			}) {
				add("node %s: its TC program (%s) is not on %s %s; `dsrlab up` attaches it", n.Name, p.File(), p.Interface.Name, mode)
			}
		}
		served := topo.VIPsServedBy(n)
		if p := n.Program; p != nil {
			if !slices.ContainsFunc(nr.Programs, func(r ProgramReport) bool { return r.Interface == p.Interface.Name && r.File == p.File() }) {
				add("node %s: its program (%s) is not attached to %s; `dsrlab up` attaches it", n.Name, p.File(), p.Interface.Name)
			}
		} else if len(dsrVIPs(served)) > 0 && (nr.Balancer == nil || nr.Balancer.Interface != n.Uplink().Name) {
			add("node %s: no XDP balancer on %s; `dsrlab up` attaches it", n.Name, n.Uplink().Name)
		}
		if want := natServices(n, served); len(want) > len(nr.NAT) {
			add("node %s: NAT rules missing (%d of %d services); `dsrlab up` restores them", n.Name, len(nr.NAT), len(want))
		}
		if vips := dsrVIPs(topo.VIPsBackedBy(n)); len(vips) > 0 {
			if nr.Decap == "" && n.Program == nil {
				add("node %s: no IPIP decapsulation; `dsrlab up` sets it up", n.Name)
			}
			for _, v := range vips {
				if !slices.Contains(nr.Loopback, v.Address.String()) {
					add("node %s: VIP %s is not on lo", n.Name, v.Address)
				}
			}
		}
	}
	return problems
}

func findInterface(list []netconf.Interface, name string) *netconf.Interface {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}
