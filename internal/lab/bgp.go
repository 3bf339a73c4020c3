package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/internal/bgp"
	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

// runsSpeaker tells whether dsrlab's BGP speaker is n's main process: a
// router or katran that speaks BGP, from the node image, with no command
// of the user's. (A router of the user's own image runs its own daemon:
// docs/BGP.md shows how to peer it with the katrans.)
func runsSpeaker(n *topology.Node) bool {
	return n.BGP != nil && n.Cmd == "" && n.Image == topology.DefaultImage
}

// bgpConfig is the speaker's configuration for n, all of it derived from
// the topology. The speaker is the container's main process, so its
// sessions die with the container (a crash) and a clean stop (SIGTERM)
// withdraws first.
func bgpConfig(t *topology.Topology, n *topology.Node) bgp.Config {
	cfg := bgp.Config{
		Node: n.Name, ASN: n.BGP.ASN, RouterID: routerID(n),
		ListenPort: bgp.DefaultPort, Hold: n.BGP.Hold, Keepalive: n.BGP.Keepalive,
		StatusAddr: bgp.DefaultStatusAddr,
	}
	for _, p := range n.BGP.Peers {
		cfg.Peers = append(cfg.Peers, bgp.Peer{Addr: p.Addr(), ASN: p.Node.BGP.ASN, Node: p.Node.Name})
	}
	if n.Kind == topology.KindRouter {
		cfg.Role = bgp.RoleLearn
		for _, v := range t.VIPs {
			if !slices.Contains(cfg.Accept, v.Prefix()) {
				cfg.Accept = append(cfg.Accept, v.Prefix())
			}
		}
		return cfg
	}
	cfg.Role = bgp.RoleAnnounce
	for _, v := range t.VIPsServedBy(n) {
		if !slices.Contains(cfg.Announce, v.Prefix()) {
			cfg.Announce = append(cfg.Announce, v.Prefix())
		}
	}
	up := n.Uplink()
	cfg.Uplink = up.Name
	switch {
	case n.Program != nil:
		// The balancer is the user's program: announce while it is there.
		cfg.Uplink = n.Program.Interface.Name
	case !slices.ContainsFunc(t.VIPsServedBy(n), func(v *topology.VIP) bool { return !v.NAT() }):
		cfg.NoXDP = true // only NAT VIPs: nftables, no XDP balancer
	}
	if up.Addr.IsValid() {
		cfg.NextHop4 = up.Addr.Addr()
	}
	if up.Addr6.IsValid() {
		cfg.NextHop6 = up.Addr6.Addr()
	}
	return cfg
}

// routerID is n's first IPv4 address; a node with none gets its ASN's four
// bytes, unique in the lab as the ASNs are.
func routerID(n *topology.Node) netip.Addr {
	for _, i := range n.Interfaces {
		if i.Addr.IsValid() {
			return i.Addr.Addr()
		}
	}
	a := n.BGP.ASN
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

// bgpCommand is the main process of a node that runs dsrlab's speaker.
func bgpCommand(t *topology.Topology, n *topology.Node) []string {
	cfg, err := json.Marshal(bgpConfig(t, n))
	if err != nil {
		panic(err) // plain values only: cannot fail
	}
	return []string{image.BinaryPath, "bgp", "--config", string(cfg)}
}

// bgpWait bounds how long up waits for the routers to learn every VIP
// from every katran: sessions come up within about a second (the
// speakers retry every second), an announcement follows the balancer's
// attachment.
const bgpWait = 20 * time.Second

// bgpRoutes waits until each BGP router of this host routes every VIP over
// each of its katrans that serves it, so that up returning means the VIPs
// answer, as it does for static routes.
func (d *deployment) bgpRoutes(ctx context.Context) (string, error) {
	var routers []*topology.Node
	for _, r := range d.topo.NodesOfKind(topology.KindRouter) {
		if r.BGP != nil && runsSpeaker(r) && d.here(r) {
			routers = append(routers, r)
		}
	}
	if len(routers) == 0 {
		return "no BGP routers", nil
	}
	deadline := time.Now().Add(bgpWait)
	var missing []string
	for {
		missing = missing[:0]
		for _, r := range routers {
			m, err := missingRoutes(d.topo, r, d.ns[r.Name])
			if err != nil {
				return "", err
			}
			missing = append(missing, m...)
		}
		if len(missing) == 0 {
			return fmt.Sprintf("%d routers learned every VIP from every katran", len(routers)), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("after %v, still not routed: %s (`dsrlab routes` shows the sessions)", bgpWait, strings.Join(missing, "; "))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// missingRoutes lists the VIP next hops router r should have learned and
// has not installed in its kernel.
func missingRoutes(t *topology.Topology, r *topology.Node, ns *netconf.Namespace) ([]string, error) {
	var missing []string
	for _, v := range t.VIPs {
		var want []netip.Addr
		for _, p := range r.BGP.Peers {
			// The next hop a katran announces is its uplink address
			// of the VIP's family.
			if via := p.Local.Peer.AddrOf(v.Is6()); v.ServedBy(p.Node) && runsSpeaker(p.Node) && via.IsValid() {
				want = append(want, via.Addr())
			}
		}
		if len(want) == 0 {
			continue
		}
		route, err := ns.RouteTo(v.Prefix())
		if err != nil {
			return nil, err
		}
		for _, via := range want {
			if route == nil || !slices.ContainsFunc(route.NextHops, func(h netconf.NextHop) bool { return h.Via == via && !h.Dead }) {
				missing = append(missing, fmt.Sprintf("%s on %s via %s", v.Prefix(), r.Name, via))
			}
		}
	}
	return missing, nil
}

// speakerStatus asks the speaker in ns for its sessions and routes.
func speakerStatus(ns *netconf.Namespace) (*bgp.Status, error) {
	c, err := ns.Dial("tcp", bgp.DefaultStatusAddr, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("no BGP speaker answers: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	return bgp.ReadStatus(c)
}
