//go:build linux

package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/topology"
)

// BalancerView is one balancer's panel: sections, each shown when it has
// something to show.
type BalancerView struct {
	Node     string    `json:"node"`
	Sections []Section `json:"sections"`
}

// Section is a titled table.
type Section struct {
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// balancerInput is what the sections of one balancer are made of.
type balancerInput struct {
	node   *topology.Node
	vips   []*topology.VIP    // those it serves, by the topology
	report *lab.NodeReport    // from inspect; nil before the first
	stats  *lab.BalancerStats // nil for a balancer without dsrlab's counters
	// realPPS are the balancer's packets per second to each real, by
	// the real's address.
	realPPS map[string]float64
	// routes are the routers' routes to the VIPs and BGP sessions.
	routes []lab.RouterRoutes
}

// balancerSections make a balancer's panel, in order; each returns nil
// when it has nothing to show. A section per new kind of state is one more
// entry.
var balancerSections = []func(*balancerInput) *Section{vipsSection, healthSection, routesSection, natSection, countersSection}

// vipsSection: each VIP's reals as the balancer's maps hold them, their
// weights, and the packets per second the balancer sends each.
func vipsSection(in *balancerInput) *Section {
	if in.report == nil || in.report.Balancer == nil {
		return nil
	}
	names := map[string]string{}
	if in.stats != nil {
		for _, r := range in.stats.Reals {
			if name, addr, ok := strings.Cut(r.Name, " "); ok {
				names[addr] = name
			}
		}
	}
	s := &Section{Title: "VIPs and reals (" + in.report.Balancer.Interface + ", XDP " + in.report.Balancer.Mode + ")",
		Columns: []string{"VIP", "real", "weight", "pkt/s to the real"}}
	for _, v := range in.report.Balancer.VIPs {
		for _, r := range v.Reals {
			addr := r.Addr.String()
			real := strings.TrimSpace(names[addr] + " " + addr)
			weight := fmt.Sprint(r.Weight)
			if r.Weight == 0 {
				weight = "0 (drained)"
			}
			pps := "–"
			if p, ok := in.realPPS[addr]; ok {
				pps = fmt.Sprintf("%.0f", p)
			}
			s.Rows = append(s.Rows, []string{v.VIP, real, weight, pps})
		}
	}
	return s
}

// healthSection: this balancer's own view of its reals' health (each
// katran checks on its own), as the controller keeps it in health.json.
func healthSection(in *balancerInput) *Section {
	if in.report == nil || len(in.report.Health) == 0 {
		return nil
	}
	s := &Section{Title: "health of the reals, as this balancer checks them",
		Columns: []string{"VIP", "real", "health", "since", "last check", "latency", "transitions"}}
	for _, r := range in.report.Health {
		since := "–"
		if !r.Since.IsZero() {
			since = r.Since.Format(time.TimeOnly)
		}
		s.Rows = append(s.Rows, []string{r.VIP, r.Real, string(r.Status), since, cmp.Or(r.LastResult, "–"),
			r.Latency.Round(time.Microsecond).String(), fmt.Sprint(r.Transitions)})
	}
	return s
}

// routesSection: how each router reaches the balancer's VIPs, as its
// kernel and BGP speaker say (`dsrlab routes`): the route, whether this
// balancer is one of its next hops and in what state, how many next hops
// share the VIP (a tier's ECMP), and the router's BGP session with it. A
// failed-over katran shows here as a next hop gone or dead.
func routesSection(in *balancerInput) *Section {
	mine := map[string]bool{}
	for _, v := range in.vips {
		mine[v.String()] = true
	}
	s := &Section{Title: "routes to its VIPs", Columns: []string{"router", "VIP", "route", "next hop here", "next hops", "BGP session"}}
	for _, rr := range in.routes {
		session := "–"
		for _, bs := range rr.Sessions {
			if bs.Node == in.node.Name {
				session = bs.State
			}
		}
		if rr.Speaker != "" {
			session = rr.Speaker
		}
		for _, vr := range rr.Routes {
			if !slices.ContainsFunc(vr.VIPs, func(v string) bool { return mine[v] }) {
				continue
			}
			route := cmp.Or(vr.Protocol, "none")
			if vr.Group != 0 {
				route += fmt.Sprintf(", nexthop group %d", vr.Group)
			}
			here := "not a next hop"
			for _, h := range vr.NextHops {
				if h.Node == in.node.Name {
					here = h.Via.String() + " " + h.State
				}
			}
			s.Rows = append(s.Rows, []string{rr.Router, vr.Dst.String(), route, here, fmt.Sprint(len(vr.NextHops)), session})
		}
	}
	if len(s.Rows) == 0 {
		return nil
	}
	return s
}

// natSection: the nftables services of a NAT balancer.
func natSection(in *balancerInput) *Section {
	if in.report == nil || len(in.report.NAT) == 0 {
		return nil
	}
	s := &Section{Title: "NAT services (nftables)", Columns: []string{"service"}}
	for _, n := range in.report.NAT {
		s.Rows = append(s.Rows, []string{n})
	}
	return s
}

// countersSection: the balancer's own counters.
func countersSection(in *balancerInput) *Section {
	st := in.stats
	if st == nil {
		return nil
	}
	s := &Section{Title: "counters", Columns: []string{"counter", "packets"}}
	for _, c := range []struct {
		name string
		v    uint64
	}{
		{"encapsulated", st.Encapsulated}, {"passed", st.Passed}, {"dropped", st.Dropped},
		{"too big (ICMP sent)", st.TooBig}, {"LRU hits", st.LRUHits}, {"LRU misses", st.LRUMisses},
		{"echo replies", st.EchoReplies}, {"ICMP forwarded", st.ICMPForwarded},
	} {
		s.Rows = append(s.Rows, []string{c.name, fmt.Sprint(c.v)})
	}
	return s
}

// balancers makes the panel of every katran of the lab.
func (w *watcher) balancers(topo *topology.Topology, now time.Time) []BalancerView {
	out := []BalancerView{}
	for _, k := range topo.NodesOfKind(topology.KindKatran) {
		in := &balancerInput{node: k, vips: topo.VIPsServedBy(k), report: w.report[k.Name], realPPS: map[string]float64{}, routes: w.routes}
		if st, ok := w.stats[k.Name]; ok {
			in.stats = &st
			for _, r := range st.Reals {
				addr := r.Name[strings.LastIndex(r.Name, " ")+1:]
				key := k.Name + " " + addr
				cur := counterSample{at: now, packets: r.Packets, bytes: r.Bytes, present: true}
				if prev, ok := w.reals[key]; ok {
					in.realPPS[addr], _ = perSecond(prev, cur)
				}
				w.reals[key] = cur
			}
		}
		bv := BalancerView{Node: k.Name, Sections: []Section{}}
		for _, sec := range balancerSections {
			if s := sec(in); s != nil {
				bv.Sections = append(bv.Sections, *s)
			}
		}
		out = append(out, bv)
	}
	return out
}
