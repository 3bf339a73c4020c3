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

// hasIPv6 tells whether any of n's links, or a VIP n has a part in, is IPv6.
func hasIPv6(t *Topology, n *Node) bool {
	for _, i := range n.Interfaces {
		if i.Addr6.IsValid() {
			return true
		}
	}
	for _, v := range append(t.VIPsServedBy(n), t.VIPsBackedBy(n)...) {
		if v.Is6() {
			return true
		}
	}
	return false
}

// derive fills in what the file leaves out; explicit values always win.
func derive(t *Topology) {
	deriveTier(t)
	for _, n := range t.Nodes {
		if n.forwards() {
			n.Routes = append(n.Routes, vipRoutes(t, n)...)
		}
		if s := n.Kind.spec().sysctls(servesNAT(t, n), hasIPv6(t, n)); s != nil {
			if n.Routing == RoutingBGP || len(n.ECMPRoutes) > 0 {
				// Spread flows over the balancers by ports too, not
				// only by addresses (the kernel's default): a lab's
				// clients are few.
				s["net.ipv4.fib_multipath_hash_policy"] = "1"
				if hasIPv6(t, n) {
					s["net.ipv6.fib_multipath_hash_policy"] = "1"
				}
			}
			maps.Copy(s, n.Sysctls)
			n.Sysctls = s
		}
		if n.forwards() {
			continue
		}
		if !n.Gateway.IsValid() && !hasDefaultRoute(n, false) {
			n.Gateway = derivedGateway(n, false)
		}
		if !n.Gateway6.IsValid() && !hasDefaultRoute(n, true) {
			n.Gateway6 = derivedGateway(n, true)
		}
	}
}

func hasDefaultRoute(n *Node, v6 bool) bool {
	for _, r := range n.Routes {
		if r.Dst.Bits() == 0 && r.Dst.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}

// derivedGateway is the router's address, of one family, on the node's
// only link to a router. With several router links the choice is the
// user's to make.
func derivedGateway(n *Node, v6 bool) netip.Addr {
	var up *Interface
	for _, ifc := range n.Interfaces {
		if ifc.Peer.Node.forwards() {
			if up != nil {
				return netip.Addr{}
			}
			up = ifc
		}
	}
	if up == nil || !up.Peer.AddrOf(v6).IsValid() {
		return netip.Addr{}
	}
	return up.Peer.AddrOf(v6).Addr()
}

// vipRoutes sends each VIP to its katrans that the router is directly
// connected to: step 2 of the DSR flow. A VIP of one katran gets a plain
// route; a tier's VIP a multipath route (router.ECMPRoutes). A router that
// runs BGP gets no VIP route from the file: its katrans announce them. A VIP
// address already routed (explicitly, or for another port) keeps its first
// route.
func vipRoutes(t *Topology, router *Node) []Route {
	if router.Routing == RoutingBGP {
		return nil
	}
	routed := map[netip.Prefix]bool{}
	for _, r := range router.Routes {
		routed[r.Dst] = true
	}
	var routes []Route
	for _, v := range t.VIPs {
		dst := v.Prefix()
		if routed[dst] {
			continue
		}
		var vias []netip.Addr
		for _, ifc := range router.Interfaces {
			if via := ifc.Peer.AddrOf(v.Is6()); v.ServedBy(ifc.Peer.Node) && via.IsValid() {
				vias = append(vias, via.Addr())
			}
		}
		switch {
		case len(vias) == 0:
			continue
		case v.Tier():
			router.ECMPRoutes = append(router.ECMPRoutes, ECMPRoute{Dst: dst, Vias: vias})
		default:
			routes = append(routes, Route{Dst: dst, Via: vias[0]})
		}
		routed[dst] = true
	}
	return routes
}

// checkPaths verifies, on the resolved topology, that every flow can
// complete. DSR: katran can send encapsulated packets towards a router, in
// the family each real is reached by, and every real can answer every
// client directly. NAT: katran can reach its reals and the clients, and the
// reals can answer katran.
func (b *builder) checkPaths(t *Topology) {
	clientAddrs := map[bool][]netip.Addr{} // by "is IPv6"
	for _, c := range t.NodesOfKind(KindClient) {
		for _, ifc := range c.Interfaces {
			for _, a := range []netip.Prefix{ifc.Addr, ifc.Addr6} {
				if a.IsValid() {
					clientAddrs[a.Addr().Is6()] = append(clientAddrs[a.Addr().Is6()], a.Addr())
				}
			}
		}
	}
	for i, v := range t.VIPs {
		b.checkVIPFamilies(i, v)
	}
	for _, k := range t.NodesOfKind(KindKatran) {
		vips := t.VIPsServedBy(k)
		if len(vips) == 0 {
			continue
		}
		p := fieldPath{"nodes", k.Name}
		up := k.Uplink()
		if up == nil {
			b.keyErrorf(p, "serves %s but has no link to a router: it could not send packets on to the reals", vips[0])
			continue
		}
		if !up.Addr.IsValid() && !up.Addr6.IsValid() {
			b.keyErrorf(p, "serves %s but its uplink %s has no ipv4: packets it sends on to the reals need it as their source", vips[0], up)
			continue
		}
		for _, v := range vips {
			if v.NAT() {
				b.checkRoutes(k, p, v, "to real", realAddrs(v))
				b.checkRoutes(k, p, v, "back to client", clientAddrs[v.Is6()])
			}
		}
	}
	for _, r := range t.NodesOfKind(KindReal) {
		vips := t.VIPsBackedBy(r)
		if len(vips) == 0 {
			continue
		}
		p := fieldPath{"nodes", r.Name}
		if up := r.Uplink(); up == nil || !up.Addr.IsValid() && !up.Addr6.IsValid() {
			b.keyErrorf(p, "backs %s but has no addressed link to a router: katran could not send it packets", vips[0])
			continue
		}
		for _, v := range vips {
			if _, ok := v.Tunnel(r); !ok {
				continue // reported with the VIP
			}
			if !v.NAT() {
				b.checkRoutes(r, p, v, "back to client", clientAddrs[v.Is6()])
			} else {
				b.checkRoutes(r, p, v, "back to load balancer", lbAddrs(v))
			}
		}
	}
}

// checkVIPFamilies reports the reals of v that katran cannot reach in a
// family it can encapsulate into (or translate to, for NAT), and a katran
// without an address of that family to send from.
func (b *builder) checkVIPFamilies(i int, v *VIP) {
	for j, r := range v.Reals {
		up := r.Node.Uplink()
		if up == nil || !up.Addr.IsValid() && !up.Addr6.IsValid() {
			continue // reported with the real
		}
		p := fieldPath{"vips", i, "reals", j}
		dst, ok := v.Tunnel(r.Node)
		if !ok {
			b.errorf(p, "real %q has no %s address on %s for %s (%s VIPs reach their reals %s)",
				r.Node.Name, familyWord(v.Is6() || !v.NAT()), up, v, familyWord(v.Is6()), v.reach())
			continue
		}
		for _, lb := range v.LBs {
			lbUp := lb.Uplink()
			if lbUp != nil && (lbUp.Addr.IsValid() || lbUp.Addr6.IsValid()) && !lbUp.AddrOf(dst.Is6()).IsValid() {
				b.errorf(p, "real %q is reached over %s, but %s's uplink %s has no %s address to send from",
					r.Node.Name, familyWord(dst.Is6()), lb.Name, lbUp, familyWord(dst.Is6()))
			}
		}
	}
}

func familyWord(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
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
	if v.ServedBy(n) {
		role = "serves"
	}
	gw := "gateway"
	if v.Is6() {
		gw = "gateway6"
	}
	b.keyErrorf(p, "%s %s but has no route %s %s: set %s or routes", role, v, to, strings.Join(lost, ", "), gw)
}

// lbAddrs are the uplink addresses v's balancers translate from (NAT).
func lbAddrs(v *VIP) []netip.Addr {
	var addrs []netip.Addr
	for _, lb := range v.LBs {
		if up := lb.Uplink(); up != nil && up.AddrOf(v.Is6()).IsValid() {
			addrs = append(addrs, up.AddrOf(v.Is6()).Addr())
		}
	}
	return addrs
}

// realAddrs are the addresses v's reals are reached at; the reals without
// one are reported on their own.
func realAddrs(v *VIP) []netip.Addr {
	var addrs []netip.Addr
	for _, r := range v.Reals {
		if a, ok := v.Tunnel(r.Node); ok {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// reaches tells whether n has a route to a: its gateway of a's family, a
// route, or a connected subnet.
func reaches(n *Node, a netip.Addr) bool {
	gw := n.Gateway
	if a.Is6() {
		gw = n.Gateway6
	}
	if gw.IsValid() || onLink(n, a) {
		return true
	}
	for _, r := range n.Routes {
		if r.Dst.Contains(a) {
			return true
		}
	}
	return false
}
