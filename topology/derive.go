package topology

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
)

func servesNAT(t *Topology, n *Node) bool {
	return slices.ContainsFunc(t.VIPsServedBy(n), (*VIP).NAT)
}

// derive fills in what the file leaves out; explicit values always win.
func derive(t *Topology) {
	for _, n := range t.Nodes {
		if s := n.Kind.spec().sysctls(servesNAT(t, n)); s != nil {
			maps.Copy(s, n.Sysctls)
			n.Sysctls = s
		}
		switch {
		case n.forwards():
			n.Routes = append(n.Routes, vipRoutes(t, n)...)
		case !n.Gateway.IsValid() && !hasDefaultRoute(n):
			n.Gateway = derivedGateway(n)
		}
	}
}

func hasDefaultRoute(n *Node) bool {
	for _, r := range n.Routes {
		if r.Dst.Bits() == 0 {
			return true
		}
	}
	return false
}

// derivedGateway is the router's address on the node's only link to a
// router. With several router links the choice is the user's to make.
func derivedGateway(n *Node) netip.Addr {
	var up *Interface
	for _, ifc := range n.Interfaces {
		if ifc.Peer.Node.forwards() {
			if up != nil {
				return netip.Addr{}
			}
			up = ifc
		}
	}
	if up == nil || !up.Peer.Addr.IsValid() {
		return netip.Addr{}
	}
	return up.Peer.Addr.Addr()
}

// vipRoutes sends each VIP to its katran when the router is directly
// connected to it: step 2 of the DSR flow. A VIP address already routed
// (explicitly, or for another port) keeps its first route.
func vipRoutes(t *Topology, router *Node) []Route {
	routed := map[netip.Prefix]bool{}
	for _, r := range router.Routes {
		routed[r.Dst] = true
	}
	var routes []Route
	for _, v := range t.VIPs {
		dst := netip.PrefixFrom(v.Address, 32)
		if routed[dst] {
			continue
		}
		for _, ifc := range router.Interfaces {
			if ifc.Peer.Node == v.LB && ifc.Peer.Addr.IsValid() {
				routes = append(routes, Route{Dst: dst, Via: ifc.Peer.Addr.Addr()})
				routed[dst] = true
				break
			}
		}
	}
	return routes
}

// checkPaths verifies, on the resolved topology, that every flow can
// complete. DSR: katran can send encapsulated packets towards a router, and
// every real can answer every client directly. NAT: katran can reach its
// reals and the clients, and the reals can answer katran.
func (b *builder) checkPaths(t *Topology) {
	var clientAddrs []netip.Addr
	for _, c := range t.NodesOfKind(KindClient) {
		for _, ifc := range c.Interfaces {
			if ifc.Addr.IsValid() {
				clientAddrs = append(clientAddrs, ifc.Addr.Addr())
			}
		}
	}
	for _, k := range t.NodesOfKind(KindKatran) {
		vips := t.VIPsServedBy(k)
		if len(vips) == 0 {
			continue
		}
		p := fieldPath{"nodes", k.Name}
		switch up := k.Uplink(); {
		case up == nil:
			b.keyErrorf(p, "serves %s but has no link to a router: it could not send packets on to the reals", vips[0])
		case !up.Addr.IsValid():
			b.keyErrorf(p, "serves %s but its uplink %s has no ipv4: packets it sends on to the reals need it as their source", vips[0], up)
		default:
			for _, v := range vips {
				if v.NAT() {
					b.checkRoutes(k, p, v, "to real", realAddrs(v))
				}
			}
			if i := slices.IndexFunc(vips, (*VIP).NAT); i >= 0 {
				b.checkRoutes(k, p, vips[i], "back to client", clientAddrs)
			}
		}
	}
	for _, r := range t.NodesOfKind(KindReal) {
		vips := t.VIPsBackedBy(r)
		if len(vips) == 0 {
			continue
		}
		p := fieldPath{"nodes", r.Name}
		if up := r.Uplink(); up == nil || !up.Addr.IsValid() {
			b.keyErrorf(p, "backs %s but has no addressed link to a router: katran could not send it packets", vips[0])
		}
		if i := slices.IndexFunc(vips, func(v *VIP) bool { return !v.NAT() }); i >= 0 {
			b.checkRoutes(r, p, vips[i], "back to client", clientAddrs)
		}
		for _, v := range vips {
			// An lb without an addressed uplink was reported above.
			if up := v.LB.Uplink(); v.NAT() && up != nil && up.Addr.IsValid() {
				b.checkRoutes(r, p, v, "back to load balancer", []netip.Addr{up.Addr.Addr()})
			}
		}
	}
}

// checkRoutes reports n, which takes part in v, if it has no route to some
// of the addresses its packets for v go to.
func (b *builder) checkRoutes(n *Node, p fieldPath, v *VIP, to string, addrs []netip.Addr) {
	var lost []string
	for _, a := range addrs {
		if !reaches(n, a) {
			lost = append(lost, a.String())
		}
	}
	if len(lost) == 0 {
		return
	}
	role := "backs"
	if v.LB == n {
		role = "serves"
	}
	b.keyErrorf(p, "%s %s but has no route %s %s: set gateway or routes", role, v, to, strings.Join(lost, ", "))
}

// realAddrs are the uplink addresses of v's reals that have one; the reals
// without one are reported on their own.
func realAddrs(v *VIP) []netip.Addr {
	var addrs []netip.Addr
	for _, r := range v.Reals {
		if up := r.Node.Uplink(); up != nil && up.Addr.IsValid() {
			addrs = append(addrs, up.Addr.Addr())
		}
	}
	return addrs
}

// reaches tells whether n has a route to a: its gateway, a route, or a
// connected subnet.
func reaches(n *Node, a netip.Addr) bool {
	if n.Gateway.IsValid() || onLink(n, a) {
		return true
	}
	for _, r := range n.Routes {
		if r.Dst.Contains(a) {
			return true
		}
	}
	return false
}
