package lab

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"

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
	if err := ownBalancer(t, v); err != nil {
		return err
	}
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
	if err := ownBalancer(t, v); err != nil {
		return err
	}
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

// ownBalancer refuses to change the reals of a VIP that a user's program
// balances: dsrlab knows nothing of how that program picks a real, and
// writing the topology's reals back would undo the user's own map edits.
func ownBalancer(t *topology.Topology, v *topology.VIP) error {
	for _, k := range t.NodesOfKind(topology.KindKatran) {
		if k.Program == nil || !slices.Contains(t.VIPsServedBy(k), v) {
			continue
		}
		return fmt.Errorf("VIP %s is balanced by %s's own program (%s), which picks its reals from its own maps: "+
			"change them with `dsrlab map %s MAP set KEY VALUE`, or in the topology's program.maps and `dsrlab up`",
			v, k.Name, filepath.Base(k.Program.File()), k.Name)
	}
	return nil
}

func realNames(t *topology.Topology) []string {
	var names []string
	for _, n := range t.NodesOfKind(topology.KindReal) {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	return names
}
