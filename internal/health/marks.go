// Package health is dsrlab's health checking of reals: which socket mark
// carries the checks of each real through the tunnel, the scheduler that
// turns check results into each balancer's view of its reals, and the
// files (health.json, events) where that view is kept.
package health

import (
	"net/netip"
	"slices"

	"github.com/dsrlab/dsrlab/topology"
)

// MarkBase is the high half of every health check mark ("ds"): a mark
// other software in a katran's namespace sets is unlikely to fall in it.
const MarkBase uint32 = 0x6473 << 16

// Mark is the socket mark of checks sent to real r over an outer header of
// dst's family: MarkBase + 2 x (r's place among the lab's reals, sorted by
// name) + 1 for IPv6. It is derived from the topology alone, so up (which
// fills the katrans' mark maps) and the controller (which marks its
// sockets) agree without telling each other; adding a real to a lab
// renumbers the reals after it, and up rewrites the maps accordingly.
func Mark(t *topology.Topology, r *topology.Node, dst netip.Addr) uint32 {
	i := slices.Index(t.NodesOfKind(topology.KindReal), r)
	m := MarkBase + 2*uint32(i)
	if dst.Is6() {
		m++
	}
	return m
}

// Tunnel is the outer header of a mark's checks.
type Tunnel struct {
	Src, Dst netip.Addr
}

// Target is one real that a katran checks for one VIP.
type Target struct {
	VIP  *topology.VIP
	Real *topology.Node
	// Mark sends the check through Tunnel to the real.
	Mark   uint32
	Tunnel Tunnel
}

// Targets lists what katran k checks: every real of every checked DSR VIP
// it serves, in file order, drained ones included (their health is shown;
// it never changes an operator's weight).
func Targets(t *topology.Topology, k *topology.Node) []Target {
	up := k.Uplink()
	if up == nil {
		return nil
	}
	var out []Target
	for _, v := range t.VIPsServedBy(k) {
		if v.HealthCheck == nil || v.NAT() {
			continue
		}
		for _, r := range v.Reals {
			dst, ok := v.Tunnel(r.Node)
			src := up.AddrOf(dst.Is6())
			if !ok || !src.IsValid() {
				continue // validation refuses a VIP its katran cannot reach a real of
			}
			out = append(out, Target{VIP: v, Real: r.Node, Mark: Mark(t, r.Node, dst), Tunnel: Tunnel{Src: src.Addr(), Dst: dst}})
		}
	}
	return out
}

// Tunnels is the mark map of katran k's tc_healthcheck.
func Tunnels(t *topology.Topology, k *topology.Node) map[uint32]Tunnel {
	out := map[uint32]Tunnel{}
	for _, tg := range Targets(t, k) {
		out[tg.Mark] = tg.Tunnel
	}
	return out
}
