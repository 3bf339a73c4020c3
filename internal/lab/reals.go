package lab

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// FindVIP finds a VIP by "ADDR:PORT/PROTO", or by "ADDR:PORT" when only one
// protocol uses that address and port.
func FindVIP(t *topology.Topology, spec string) (*topology.VIP, error) {
	var matches []*topology.VIP
	for _, v := range t.VIPs {
		if v.String() == spec || netip.AddrPortFrom(v.Address, v.Port).String() == spec {
			matches = append(matches, v)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		var have []string
		for _, v := range t.VIPs {
			have = append(have, v.String())
		}
		return nil, fmt.Errorf("lab %q has no VIP %q (it has %s)", t.Name, spec, strings.Join(have, ", "))
	}
	return nil, fmt.Errorf("VIP %q is ambiguous: add /tcp or /udp", spec)
}

// SetRealWeight makes node a real of v with the given weight, adding it if
// it is not one yet. Weight 0 drains it: established flows stay, new ones
// go elsewhere.
func SetRealWeight(t *topology.Topology, v *topology.VIP, node string, weight uint32) error {
	n := t.Node(node)
	if n == nil || n.Kind != topology.KindReal {
		return fmt.Errorf("lab %q has no real node %q (reals: %s)", t.Name, node, strings.Join(realNames(t), ", "))
	}
	if up := n.Uplink(); up == nil || !up.Addr.IsValid() {
		return fmt.Errorf("real %s has no addressed link to a router: the balancer could not reach it", node)
	}
	if weight > topology.MaxWeight {
		return fmt.Errorf("weight %d: at most %d", weight, topology.MaxWeight)
	}
	for i := range v.Reals {
		if v.Reals[i].Node == n {
			v.Reals[i].Weight = weight
			return nil
		}
	}
	v.Reals = append(v.Reals, topology.Real{Node: n, Weight: weight})
	return nil
}

// RemoveReal takes node out of v: its flows, even established ones, are
// re-balanced over the remaining reals.
func RemoveReal(t *topology.Topology, v *topology.VIP, node string) error {
	for i, r := range v.Reals {
		if r.Node.Name != node {
			continue
		}
		if len(v.Reals) == 1 {
			return fmt.Errorf("%s is the last real of VIP %s: drain it instead (weight 0)", node, v)
		}
		v.Reals = append(v.Reals[:i:i], v.Reals[i+1:]...)
		return nil
	}
	return fmt.Errorf("%s is not a real of VIP %s", node, v)
}

func realNames(t *topology.Topology) []string {
	var names []string
	for _, n := range t.NodesOfKind(topology.KindReal) {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	return names
}

// BalancerStats are one balancer's counters, by name rather than by map key.
type BalancerStats struct {
	Node         string       `json:"node"`
	Passed       uint64       `json:"passed"`
	Encapsulated uint64       `json:"encapsulated"`
	Dropped      uint64       `json:"dropped"`
	TooBig       uint64       `json:"too_big"`
	LRUHits      uint64       `json:"lru_hits"`
	LRURemote    uint64       `json:"lru_remote_hits"` // found on another CPU's LRU copy
	LRUMisses    uint64       `json:"lru_misses"`
	VIPs         []CounterRow `json:"vips"`
	Reals        []CounterRow `json:"reals"`
}

// CounterRow is the traffic of one VIP or real.
type CounterRow struct {
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Stats reads the counters of every XDP balancer of a running lab from the
// kernel, through the programs attached to the katrans' interfaces.
func Stats(ctx context.Context, rt runtime.Runtime, t *topology.Topology) ([]BalancerStats, error) {
	realName := map[netip.Addr]string{}
	for _, r := range t.NodesOfKind(topology.KindReal) {
		if up := r.Uplink(); up != nil {
			realName[up.Addr.Addr()] = r.Name
		}
	}
	var out []BalancerStats
	for _, k := range t.NodesOfKind(topology.KindKatran) {
		if len(dsrVIPs(t.VIPsServedBy(k))) == 0 {
			continue
		}
		s, err := balancerStats(ctx, rt, k)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", k.Name, err)
		}
		bs := BalancerStats{Node: k.Name, Passed: s.Passed, Encapsulated: s.Encapsulated, Dropped: s.Dropped,
			TooBig: s.TooBig, LRUHits: s.LRUHits, LRURemote: s.LRURemoteHits, LRUMisses: s.LRUMisses}
		for v, c := range s.VIPs {
			bs.VIPs = append(bs.VIPs, CounterRow{Name: v.String(), Packets: c.Packets, Bytes: c.Bytes})
		}
		for a, c := range s.Reals {
			name := a.String()
			if n := realName[a]; n != "" {
				name = n + " " + name
			}
			bs.Reals = append(bs.Reals, CounterRow{Name: name, Packets: c.Packets, Bytes: c.Bytes})
		}
		sort.Slice(bs.VIPs, func(i, j int) bool { return bs.VIPs[i].Name < bs.VIPs[j].Name })
		sort.Slice(bs.Reals, func(i, j int) bool { return bs.Reals[i].Name < bs.Reals[j].Name })
		out = append(out, bs)
	}
	return out, nil
}

func balancerStats(ctx context.Context, rt runtime.Runtime, k *topology.Node) (bpf.Stats, error) {
	ns, err := nodeNamespace(ctx, rt, k)
	if err != nil {
		return bpf.Stats{}, err
	}
	defer ns.Close()
	lb, _, err := openBalancer(ns, k.Uplink().Name)
	if err != nil {
		return bpf.Stats{}, err
	}
	if lb == nil {
		return bpf.Stats{}, fmt.Errorf("no XDP balancer attached to %s; `dsrlab up` attaches it", k.Uplink())
	}
	defer lb.Close()
	return lb.Stats()
}

// nodeNamespace opens the network namespace of a node's running container.
func nodeNamespace(ctx context.Context, rt runtime.Runtime, n *topology.Node) (*netconf.Namespace, error) {
	return openNamespace(ctx, rt, n, n.ContainerName)
}

// openNamespace opens a container's network namespace through its init's
// PID, inspecting the container right before: a PID read earlier could
// have been reused by another process since.
func openNamespace(ctx context.Context, rt runtime.Runtime, n *topology.Node, container string) (*netconf.Namespace, error) {
	c, err := rt.Inspect(ctx, container)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	if c.PID == 0 {
		return nil, fmt.Errorf("node %s: container %s is %s; `dsrlab up` starts it", n.Name, c.Name, c.State)
	}
	return netconf.FromPID(c.PID, n.Name)
}
