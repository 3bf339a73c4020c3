// Package graph draws a topology: its nodes and links, and the path each
// VIP's packets take through them, numbered the way the reference README
// draws the DSR flow. The same drawing renders as Mermaid (for Markdown)
// and as Graphviz DOT.
package graph

import (
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dsrlab/dsrlab/topology"
)

// style is how an edge is drawn; each is one colour in both renderings.
type style int

const (
	styleLink    style = iota // a veth link, no direction
	styleRequest              // client to real, solid blue
	styleTunnel               // IPIP from katran to a real, dashed green
	styleReply                // back to the client, thick red
)

// edge is one arrow (or, for a link, one line) of the drawing.
type edge struct {
	from, to *topology.Node
	style    style
	title    string              // "1. Request"; empty for a link
	lines    []string            // the rest of the label
	out      *topology.Interface // the hop's egress interface; nil for a link
}

// drawing is everything both renderers draw, in a fixed order: links in
// file order, then the flows of each VIP in file order.
type drawing struct {
	nodes []*topology.Node
	ids   map[*topology.Node]string
	edges []edge
}

func draw(t *topology.Topology) drawing {
	d := drawing{nodes: t.Nodes, ids: map[*topology.Node]string{}}
	for i, n := range t.Nodes {
		// The index keeps names that differ only in - and _ apart, and
		// the leading letter keeps Mermaid from reading a name like "o1"
		// or "x" as an arrow head, or "end" as a keyword.
		d.ids[n] = fmt.Sprintf("n%d_%s", i, strings.ReplaceAll(n.Name, "-", "_"))
	}
	for _, l := range t.Links {
		d.edges = append(d.edges, edge{from: l.A.Node, to: l.B.Node, style: styleLink,
			lines: []string{ifaceLabel(l.A) + " — " + ifaceLabel(l.B)}})
	}
	// The branches of a flow share hops (every real's reply takes the
	// router's last hop to the client); each is drawn once.
	drawn := map[string]bool{}
	for _, v := range t.VIPs {
		for _, c := range t.NodesOfKind(topology.KindClient) {
			for _, ifc := range c.Interfaces {
				src := ifc.AddrOf(v.Is6())
				if !src.IsValid() {
					continue
				}
				// A tier's flow is drawn through each of its
				// katrans: the router's ECMP picks one per flow.
				for _, lb := range v.LBs {
					for _, e := range flow(t, v, lb, c, src.Addr()) {
						key := fmt.Sprint(d.ids[e.from], d.ids[e.to], e.style, e.title, e.lines)
						if !drawn[key] {
							drawn[key] = true
							d.edges = append(d.edges, e)
						}
					}
				}
				break
			}
		}
	}
	return d
}

func ifaceLabel(i *topology.Interface) string {
	label := i.Name
	for _, a := range []netip.Prefix{i.Addr, i.Addr6} {
		if a.IsValid() {
			label += " " + a.String()
		}
	}
	return label
}

// leg is a stretch of a flow between two hosts: the step names of its
// first, middle and last hop, and what the packet looks like on it.
type leg struct {
	first, middle, last string
	style               style
	lines               []string
	hops                []*topology.Interface // egress interface of each hop
}

// flow is the path of one client's connection to v through its balancer
// lb, to each real in turn. The request is drawn once; the legs after it are
// one branch per real, numbered alike because a connection takes exactly
// one of them.
func flow(t *topology.Topology, v *topology.VIP, lb, client *topology.Node, src netip.Addr) []edge {
	vip := netip.AddrPortFrom(v.Address, v.Port).String()
	request := leg{first: "Request", middle: "Forward", last: "Forward", style: styleRequest,
		lines: []string{fmt.Sprintf("IP: %s → %s", src, vip)},
		hops:  route(t, client, v.Address, lb)}
	if request.hops == nil {
		return nil
	}
	edges, next := request.edges(1)
	for _, r := range v.Reals {
		realAddr, ok := v.Tunnel(r.Node)
		if !ok {
			continue
		}
		lbAddr := lb.Uplink().AddrOf(realAddr.Is6()).Addr()
		weight := ""
		switch {
		case r.Weight == 0:
			weight = "weight 0: drained, no new flows"
		case len(v.Reals) > 1:
			weight = fmt.Sprintf("weight %d", r.Weight)
		}
		var legs []leg
		if v.NAT() {
			legs = []leg{
				{first: "DNAT + SNAT", middle: "Forward", last: "Forward", style: styleRequest,
					lines: nonEmpty(fmt.Sprintf("IP: %s → %s", lbAddr, netip.AddrPortFrom(realAddr, v.Port)), weight),
					hops:  route(t, lb, realAddr, r.Node)},
				{first: "Reply", middle: "Forward", last: "Hair-pin", style: styleReply,
					lines: []string{fmt.Sprintf("IP: %s → %s", netip.AddrPortFrom(realAddr, v.Port), lbAddr)},
					hops:  route(t, r.Node, lbAddr, lb)},
				{first: "Final Reply", middle: "Forward", last: "Return", style: styleReply,
					lines: []string{fmt.Sprintf("IP: %s → %s", vip, src)},
					hops:  route(t, lb, src, client)},
			}
		} else {
			// XDP_TX sends the encapsulated packet back out of the
			// uplink it came in on, whatever katran's routes say.
			up := lb.Uplink()
			encap := encapName(v.Address, realAddr)
			tunnel := route(t, up.Peer.Node, realAddr, r.Node)
			if tunnel != nil {
				tunnel = append([]*topology.Interface{up}, tunnel...)
			}
			// A user's program picks the outer source itself (Katran's
			// derives it from the client): the lab cannot know it.
			outerSrc := lbAddr.String()
			if lb.Program != nil {
				outerSrc = "source set by the program"
			}
			legs = []leg{
				{first: encap + " Encap", middle: "Forward " + encap, last: "Forward " + encap, style: styleTunnel,
					lines: nonEmpty(fmt.Sprintf("Outer: %s → %s", outerSrc, realAddr), fmt.Sprintf("Inner: %s → %s", src, vip), weight),
					hops:  tunnel},
				{first: "DSR Reply", middle: "Forward", last: "Return", style: styleReply,
					lines: []string{fmt.Sprintf("IP: %s → %s", vip, src)},
					hops:  route(t, r.Node, src, client)},
			}
		}
		step := next
		for _, l := range legs {
			if l.hops == nil {
				break
			}
			var es []edge
			es, step = l.edges(step)
			edges = append(edges, es...)
		}
	}
	return edges
}

// encapName names the tunnel a VIP's packets take to a real.
func encapName(vip, real netip.Addr) string {
	switch {
	case !real.Is6():
		return "IPIP"
	case !vip.Is6():
		return "4in6"
	}
	return "IP6IP6"
}

func nonEmpty(lines ...string) []string {
	var out []string
	for _, l := range lines {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// edges numbers l's hops from step on, and returns the step after them.
func (l leg) edges(step int) ([]edge, int) {
	var es []edge
	for i, out := range l.hops {
		name := l.middle
		switch {
		case i == 0:
			name = l.first
		case i == len(l.hops)-1:
			name = l.last
		}
		lines := append([]string{fmt.Sprintf("(%s → %s)", out.Name, out.Peer.Name)}, l.lines...)
		es = append(es, edge{from: out.Node, to: out.Peer.Node, style: l.style,
			title: fmt.Sprintf("%d. %s", step, name), lines: lines, out: out})
		step++
	}
	return es, step
}

// route follows the routing tables from node from towards dst, as the
// kernels of the lab would, until it arrives at node to. It returns the
// egress interface of each hop, or nil when the tables lead elsewhere.
func route(t *topology.Topology, from *topology.Node, dst netip.Addr, to *topology.Node) []*topology.Interface {
	var hops []*topology.Interface
	for n := from; n != to; {
		if len(hops) == len(t.Nodes) {
			return nil // a routing loop
		}
		out := tierHop(t, n, dst, to)
		if out == nil {
			out = egress(n, dst)
		}
		if out == nil {
			return nil
		}
		hops = append(hops, out)
		n = out.Peer.Node
	}
	return hops
}

// tierHop is the interface a router sends a VIP's packet out of towards
// lb, one of the katrans serving the VIP, when its way to the VIP is not a
// single route: a tier's multipath route (static), or what its directly
// linked katrans announce (BGP). Either has each such katran as a next
// hop, and a connection takes one of them: the drawing follows each.
func tierHop(t *topology.Topology, n *topology.Node, dst netip.Addr, lb *topology.Node) *topology.Interface {
	if n.Routing != topology.RoutingBGP && !slices.ContainsFunc(n.ECMPRoutes, func(r topology.ECMPRoute) bool { return r.Dst.Contains(dst) }) {
		return nil
	}
	if !slices.ContainsFunc(t.VIPs, func(v *topology.VIP) bool { return v.Address == dst && v.ServedBy(lb) }) {
		return nil
	}
	for _, ifc := range n.Interfaces {
		if ifc.Peer.Node == lb {
			return ifc
		}
	}
	return nil
}

// egress is the interface n sends a packet for dst out of: the longest
// match among its connected subnets, its routes and its default gateway.
func egress(n *topology.Node, dst netip.Addr) *topology.Interface {
	var best *topology.Interface
	bits := -1
	consider := func(p netip.Prefix, via netip.Addr) {
		if !p.Contains(dst) || p.Bits() <= bits {
			return
		}
		for _, ifc := range n.Interfaces {
			if a := ifc.AddrOf(dst.Is6()); a.IsValid() && a.Contains(via) {
				best, bits = ifc, p.Bits()
				return
			}
		}
	}
	for _, ifc := range n.Interfaces {
		if a := ifc.AddrOf(dst.Is6()); a.IsValid() {
			consider(a.Masked(), dst)
		}
	}
	for _, r := range n.Routes {
		consider(r.Dst, r.Via)
	}
	gw := n.Gateway
	if dst.Is6() {
		gw = n.Gateway6
	}
	if gw.IsValid() {
		consider(netip.PrefixFrom(dst, 0).Masked(), gw)
	}
	return best
}

// nodeLines describe a node: its kind, container, interfaces and the
// VIPs it has a part in.
func nodeLines(t *topology.Topology, n *topology.Node) []string {
	lines := []string{string(n.Kind)}
	if n.ContainerName != n.Name {
		lines[0] += ", container " + n.ContainerName
	}
	for _, ifc := range n.Interfaces {
		lines = append(lines, ifaceLabel(ifc))
	}
	if p := n.Program; p != nil {
		name := cmp.Or(p.Name, "XDP program")
		lines = append(lines, fmt.Sprintf("%s (%s) on %s", name, filepath.Base(p.File()), p.Interface.Name))
	}
	for _, v := range t.VIPsServedBy(n) {
		lines = append(lines, fmt.Sprintf("serves %s (%s)", v, v.Mode))
	}
	// A NAT real receives connections to its own address; a DSR real
	// holds the VIP on lo.
	var lo []string
	for _, v := range t.VIPsBackedBy(n) {
		if a := v.Address.String(); !v.NAT() && !slices.Contains(lo, a) {
			lo = append(lo, a)
		}
	}
	if lo != nil {
		lines = append(lines, "lo "+strings.Join(lo, ", "))
	}
	return lines
}
