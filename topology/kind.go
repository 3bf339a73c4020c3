package topology

import (
	"maps"
	"strings"
)

// Kind is the role a node plays in the DSR packet flow.
type Kind string

const (
	KindClient Kind = "client"
	KindRouter Kind = "router"
	KindKatran Kind = "katran"
	KindReal   Kind = "real"
)

// KindSpec is everything that makes a kind what it is, in one place: the
// builder, the derivations and the graph read it from here, and a test holds
// the schema's enum to it. Adding a kind is one entry in kindSpecs plus the
// orchestration step that does its work.
type KindSpec struct {
	Kind Kind
	// Forwards: the node routes other nodes' packets. It gets
	// ip_forward=1 and rp_filter off, a /32 route per VIP towards the
	// katran serving it, and other nodes' default routes point at it.
	Forwards bool
	// Encap: IPIP-encapsulated packets cross the node's links, so they
	// default to EncapMTU instead of DefaultMTU.
	Encap bool
	// RPFilterOff: the node sees asymmetric flows (a real gets requests
	// through the tunnel and answers directly) and strict rp_filter would
	// drop them.
	RPFilterOff bool
	// XDPField / DecapField: the node has an `xdp:` / `decap:` mode field.
	XDPField, DecapField bool
	// ProgramOnUplink: a user's `program:` goes on the node's link toward
	// a router unless it names an interface; on other kinds the interface
	// is required. (What it replaces is the orchestrator's business: the
	// balancer on a katran, the XDP decap on a real.)
	ProgramOnUplink bool
	// RoutingField: the node has `routing:` (static or bgp routes to the
	// VIPs' balancers). BGPField: it may run a BGP speaker (`bgp:`).
	RoutingField, BGPField bool
	// Fill and Stroke are the kind's colours in graphs (the reference
	// README's diagram).
	Fill, Stroke string
}

// kindSpecs are the kinds in the order they are listed to users.
var kindSpecs = []*KindSpec{
	// sends requests to the VIPs; default route via its router
	{Kind: KindClient, Fill: "#e3f2fd", Stroke: "#1565c0"},
	// L3 gateway; routes each VIP to the katran that serves it
	{Kind: KindRouter, Forwards: true, RPFilterOff: true, RoutingField: true, BGPField: true, Fill: "#fff9c4", Stroke: "#fbc02d"},
	// XDP load balancer: encapsulates VIP packets towards a real
	{Kind: KindKatran, Encap: true, XDPField: true, ProgramOnUplink: true, BGPField: true, Fill: "#e8f5e9", Stroke: "#2e7d32"},
	// backend: decapsulates, holds the VIPs on lo, answers the client directly
	{Kind: KindReal, Encap: true, RPFilterOff: true, DecapField: true, ProgramOnUplink: true, Fill: "#fce4ec", Stroke: "#c2185b"},
}

var kindByName = func() map[Kind]*KindSpec {
	m := map[Kind]*KindSpec{}
	for _, s := range kindSpecs {
		m[s.Kind] = s
	}
	return m
}()

// Kinds returns every kind, in the order they are listed to users.
func Kinds() []*KindSpec { return kindSpecs }

// Spec returns what the kind is, or nil for an unknown kind.
func (k Kind) Spec() *KindSpec { return kindByName[k] }

func (k Kind) valid() bool { return k.Spec() != nil }

// spec is Spec for the builder, which meets unknown kinds (already reported)
// and treats them as a kind that does nothing.
func (k Kind) spec() *KindSpec {
	if s := kindByName[k]; s != nil {
		return s
	}
	return &KindSpec{Kind: k}
}

// kindList is "client, router, katran or real", for messages.
func kindList() string {
	names := make([]string, len(kindSpecs))
	for i, s := range kindSpecs {
		names[i] = string(s.Kind)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// rpFilterOff turns reverse-path filtering off. The DSR flow is asymmetric
// by design: the router sees VIP replies arrive from the real while its VIP
// route points at katran, and the real sees client packets arrive through
// the tunnel (DESIGN.md pitfall 4). Strict rp_filter drops both.
var rpFilterOff = map[string]string{
	"net.ipv4.conf.all.rp_filter":     "0",
	"net.ipv4.conf.default.rp_filter": "0",
}

// ipv6On enables IPv6 in a node's namespace (container engines turn it
// off where their own network has none) and makes addresses usable at once:
// duplicate address detection would hold every new address back for a
// second or two, and the lab's addresses are unique by validation.
var ipv6On = map[string]string{
	"net.ipv6.conf.all.disable_ipv6":     "0",
	"net.ipv6.conf.default.disable_ipv6": "0",
	"net.ipv6.conf.all.accept_dad":       "0",
	"net.ipv6.conf.default.accept_dad":   "0",
}

// sysctls are what a node of this kind needs. forwarding is also asked of
// a katran that translates NAT VIPs: it forwards, and receives packets for
// a VIP that is not its own address, which strict rp_filter would drop.
// v6: the node has IPv6 addresses or VIPs.
func (s *KindSpec) sysctls(forwarding, v6 bool) map[string]string {
	forwarding = forwarding || s.Forwards
	out := map[string]string{}
	if forwarding || s.RPFilterOff {
		maps.Copy(out, rpFilterOff)
	}
	if forwarding {
		out["net.ipv4.ip_forward"] = "1"
	}
	if v6 {
		maps.Copy(out, ipv6On)
		if forwarding {
			out["net.ipv6.conf.all.forwarding"] = "1"
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
