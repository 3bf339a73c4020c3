package topology

import (
	"maps"
	"net/netip"
	"strings"
)

// rpFilterOff turns reverse-path filtering off. The DSR flow is asymmetric
// by design: the router sees VIP replies arrive from the real while its VIP
// route points at katran, and the real sees client packets arrive through
// the tunnel (DESIGN.md pitfall 4). Strict rp_filter drops both.
var rpFilterOff = map[string]string{
	"net.ipv4.conf.all.rp_filter":     "0",
	"net.ipv4.conf.default.rp_filter": "0",
}

func derivedSysctls(k Kind) map[string]string {
	switch k {
	case KindRouter:
		s := maps.Clone(rpFilterOff)
		s["net.ipv4.ip_forward"] = "1"
		return s
	case KindReal:
		return maps.Clone(rpFilterOff)
	}
	return nil
}

// derive fills in what the file leaves out; explicit values always win.
func derive(t *Topology) {
	for _, n := range t.Nodes {
		if s := derivedSysctls(n.Kind); s != nil {
			maps.Copy(s, n.Sysctls)
			n.Sysctls = s
		}
		switch n.Kind {
		case KindRouter:
			n.Routes = append(n.Routes, vipRoutes(t, n)...)
		default:
			if !n.Gateway.IsValid() && !hasDefaultRoute(n) {
				n.Gateway = derivedGateway(n)
			}
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
		if ifc.Peer.Node.Kind == KindRouter {
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

// checkPaths verifies, on the resolved topology, that the DSR flow can
// complete: katran can send encapsulated packets towards a router, and
// every real can answer every client directly.
func (b *builder) checkPaths(t *Topology) {
	for _, k := range t.NodesOfKind(KindKatran) {
		vips := t.VIPsServedBy(k)
		if len(vips) == 0 {
			continue
		}
		switch up := k.Uplink(); {
		case up == nil:
			b.keyErrorf(fieldPath{"nodes", k.Name}, "serves %s but has no link to a router: it could not send encapsulated packets", vips[0])
		case !up.Addr.IsValid():
			b.keyErrorf(fieldPath{"nodes", k.Name}, "serves %s but its uplink %s has no ipv4: encapsulated packets need it as their source", vips[0], up)
		}
	}
	var clientAddrs []netip.Addr
	for _, c := range t.NodesOfKind(KindClient) {
		for _, ifc := range c.Interfaces {
			if ifc.Addr.IsValid() {
				clientAddrs = append(clientAddrs, ifc.Addr.Addr())
			}
		}
	}
	for _, r := range t.NodesOfKind(KindReal) {
		vips := t.VIPsBackedBy(r)
		if len(vips) == 0 {
			continue
		}
		if up := r.Uplink(); up == nil || !up.Addr.IsValid() {
			b.keyErrorf(fieldPath{"nodes", r.Name}, "backs %s but has no addressed link to a router: katran could not tunnel to it", vips[0])
		}
		var lost []string
		for _, a := range clientAddrs {
			if !reaches(r, a) {
				lost = append(lost, a.String())
			}
		}
		if len(lost) > 0 {
			b.keyErrorf(fieldPath{"nodes", r.Name}, "backs %s but has no route back to client %s: set gateway or routes", vips[0], strings.Join(lost, ", "))
		}
	}
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
