package lab

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/dsrlab/dsrlab/internal/bgp"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// RouterRoutes is what one router knows of the way to the VIPs, read from
// its kernel and its BGP speaker, not from the topology.
type RouterRoutes struct {
	Router  string `json:"router"`
	Routing string `json:"routing"`
	// Sessions are the speaker's BGP sessions (bgp routing only).
	Sessions []bgp.PeerStatus `json:"sessions,omitempty"`
	// Speaker says why Sessions could not be read, if they could not.
	Speaker string     `json:"speaker,omitempty"`
	Routes  []VIPRoute `json:"routes"`
}

// VIPRoute is the kernel's route to one VIP address on a router.
type VIPRoute struct {
	Dst      netip.Prefix `json:"dst"`
	VIPs     []string     `json:"vips"`
	Protocol string       `json:"protocol,omitempty"` // static, bgp, ...; "" when there is no route
	Group    uint32       `json:"nexthop_group,omitempty"`
	NextHops []NextHopRow `json:"next_hops"`
}

// NextHopRow is one next hop of a VIP route, named by the node it reaches.
type NextHopRow struct {
	Via    netip.Addr `json:"via"`
	Dev    string     `json:"dev,omitempty"`
	Node   string     `json:"node,omitempty"`
	Weight int        `json:"weight"`
	State  string     `json:"state"` // ok, linkdown, dead
}

// Routes reads every router's routes to the lab's VIPs, and for a router
// that runs BGP its speaker's sessions; those of another host through
// dsrlab's agent there.
func Routes(ctx context.Context, rts runtime.Set, t *topology.Topology) ([]RouterRoutes, error) {
	byRouter := map[string]RouterRoutes{}
	remote := map[string][]string{} // router names by host
	for _, r := range t.NodesOfKind(topology.KindRouter) {
		if !r.Host.Local() {
			remote[r.Host.Name] = append(remote[r.Host.Name], r.Name)
			continue
		}
		ns, err := NodeNamespace(ctx, rts, t, r.Name)
		if err != nil {
			return nil, err
		}
		rr, err := routerRoutes(r, ns, t)
		ns.Close()
		if err != nil {
			return nil, err
		}
		byRouter[r.Name] = rr
	}
	for _, h := range slices.Sorted(maps.Keys(remote)) {
		res, err := agentCall(ctx, rts, t, h, AgentRequest{Phase: phaseRoutes, Nodes: remote[h]})
		if err != nil {
			return nil, err
		}
		for _, rr := range res.Routes {
			byRouter[rr.Router] = rr
		}
	}
	var out []RouterRoutes
	for _, r := range t.NodesOfKind(topology.KindRouter) {
		if rr, ok := byRouter[r.Name]; ok {
			out = append(out, rr)
		}
	}
	return out, nil
}

// routerRoutes reads router r's routes and sessions in its namespace.
func routerRoutes(r *topology.Node, ns *netconf.Namespace, t *topology.Topology) (RouterRoutes, error) {
	rr := RouterRoutes{Router: r.Name, Routing: string(r.Routing)}
	var err error
	if rr.Routes, err = vipRoutes(ns, t); err != nil {
		return rr, fmt.Errorf("node %s: %w", r.Name, err)
	}
	if r.BGP != nil {
		rr.Sessions, rr.Speaker = speakerSessions(ns)
	}
	return rr, nil
}

func vipRoutes(ns *netconf.Namespace, t *topology.Topology) ([]VIPRoute, error) {
	var out []VIPRoute
	byDst := map[netip.Prefix]int{}
	for _, v := range t.VIPs {
		if i, ok := byDst[v.Prefix()]; ok {
			out[i].VIPs = append(out[i].VIPs, v.String())
			continue
		}
		vr := VIPRoute{Dst: v.Prefix(), VIPs: []string{v.String()}}
		kr, err := ns.RouteTo(v.Prefix())
		if err != nil {
			return nil, err
		}
		if kr != nil {
			vr.Protocol, vr.Group = protocolName(kr.Protocol), kr.Group
			for _, h := range kr.NextHops {
				row := NextHopRow{Via: h.Via, Dev: h.Dev, Weight: h.Weight, State: "ok", Node: nodeAt(t, h.Via)}
				switch {
				case h.Dead:
					row.State = "dead"
				case h.LinkDown:
					row.State = "linkdown"
				}
				vr.NextHops = append(vr.NextHops, row)
			}
		}
		byDst[v.Prefix()] = len(out)
		out = append(out, vr)
	}
	return out, nil
}

// nodeAt names the node whose interface has address a.
func nodeAt(t *topology.Topology, a netip.Addr) string {
	for _, n := range t.Nodes {
		if slices.ContainsFunc(n.Interfaces, func(i *topology.Interface) bool { return i.Addr.Addr() == a || i.Addr6.Addr() == a }) {
			return n.Name
		}
	}
	return ""
}

func protocolName(p int) string {
	switch p {
	case netconf.ProtoStatic:
		return "static"
	case netconf.ProtoBGP:
		return "bgp"
	case 2:
		return "kernel"
	case 3:
		return "boot"
	}
	return fmt.Sprint(p)
}

// speakerSessions reads the router's sessions from its speaker, or says
// why it could not.
func speakerSessions(ns *netconf.Namespace) ([]bgp.PeerStatus, string) {
	st, err := speakerStatus(ns)
	if err != nil {
		return nil, err.Error()
	}
	return st.Peers, ""
}
