package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Routing is how a router learns where the VIPs' balancers are.
type Routing string

const (
	// RoutingStatic: a route per VIP written by up; a VIP of several
	// balancers gets one multipath route over a resilient nexthop group.
	RoutingStatic Routing = "static"
	// RoutingBGP: the balancers announce their VIPs over BGP sessions to
	// the router's speaker, which installs the same multipath routes and
	// withdraws a balancer's next hop when its session ends.
	RoutingBGP Routing = "bgp"
)

// BGP defaults: timers short enough that a dead balancer is withdrawn
// within seconds, which is what a lab rehearses; private 4-byte ASNs
// (RFC 6996) numbered after the node's place in the lab.
const (
	DefaultHold      = 3
	DefaultKeepalive = 1
	privateASNBase   = 4200000000
	maxASN           = 4294967294
	asTrans          = 23456 // RFC 6793: stands for a 4-byte ASN, never a speaker's own
	maxHold          = 65535
)

// BGP is a node's speaker.
type BGP struct {
	ASN uint32
	// Hold and Keepalive are in seconds; a hold of 0 means no keepalives.
	Hold, Keepalive int
	// Peers are the speakers on the node's links: a router's katrans, a
	// katran's router.
	Peers []BGPPeer
}

// BGPPeer is the other end of a BGP session over one link.
type BGPPeer struct {
	Node *Node
	// Local is the node's own interface on the link; the session runs
	// between its address and the peer's, IPv4 when both have one.
	Local *Interface
}

// Addr is the address a session to the peer is opened to.
func (p BGPPeer) Addr() netip.Addr { return sessionAddr(p.Local.Peer) }

// LocalAddr is the node's own address of the session.
func (p BGPPeer) LocalAddr() netip.Addr { return sessionAddr(p.Local) }

func sessionAddr(i *Interface) netip.Addr {
	if i.Addr.IsValid() {
		return i.Addr.Addr()
	}
	return i.Addr6.Addr()
}

// LBNames lists v's balancers for messages: "katran" or "katran1,katran2".
func (v *VIP) LBNames() string {
	names := make([]string, len(v.LBs))
	for i, lb := range v.LBs {
		names[i] = lb.Name
	}
	return strings.Join(names, ",")
}

// ECMPRoute is a route over several next hops, spread by flow.
type ECMPRoute struct {
	Dst  netip.Prefix
	Vias []netip.Addr
}

type rawBGP struct {
	ASN       *integer `yaml:"asn,omitempty"`
	Hold      *integer `yaml:"hold,omitempty"`
	Keepalive *integer `yaml:"keepalive,omitempty"`
}

// rawLB is a VIP's `lb`: one node name, or a list of them.
type rawLB struct {
	names []string
	list  bool
}

func (l *rawLB) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		l.names = []string{n.Value}
		return n.Decode(&l.names[0])
	case yaml.SequenceNode:
		l.list = true
		return n.Decode(&l.names)
	}
	return typeError(n, "a node name or a list of node names")
}

func (l rawLB) MarshalYAML() (any, error) {
	if len(l.names) == 1 && !l.list {
		return l.names[0], nil
	}
	return l.names, nil
}

// buildLBs resolves a VIP's balancers.
func (b *builder) buildLBs(t *Topology, v *VIP, raw rawLB, p fieldPath) {
	if len(raw.names) == 0 {
		b.errorf(p, "required: a katran, or a list of them")
		return
	}
	seen := map[string]int{}
	for i, name := range raw.names {
		ip := p
		if raw.list {
			ip = p.index(i)
		}
		if j, dup := seen[name]; dup {
			b.errorf(ip, "%q is already listed at lb[%d]", name, j)
			continue
		}
		seen[name] = i
		if n := b.vipNode(t, name, KindKatran, ip); n != nil {
			v.LBs = append(v.LBs, n)
		}
	}
}

// buildTier reads the routers' `routing` and the speakers' `bgp` blocks,
// once the VIPs are known (the default routing depends on them).
func (b *builder) buildTier(t *Topology, raws map[string]*rawNode) {
	tier := slices.ContainsFunc(t.VIPs, (*VIP).Tier)
	for _, n := range t.Nodes {
		rn := raws[n.Name]
		if rn == nil {
			rn = &rawNode{}
		}
		p := fieldPath{"nodes", n.Name}
		spec := n.Kind.spec()
		switch {
		case rn.Routing != "" && !spec.RoutingField:
			b.errorf(p.key("routing"), "only a router has routing (this node is a %s)", n.Kind)
		case spec.RoutingField:
			n.Routing = Routing(rn.Routing)
			switch {
			case rn.Routing == "" && tier:
				n.Routing = RoutingBGP
			case rn.Routing == "":
				n.Routing = RoutingStatic
			case n.Routing != RoutingStatic && n.Routing != RoutingBGP:
				b.errorf(p.key("routing"), "%q is not a routing mode (want static or bgp)", rn.Routing)
			}
		}
		if rn.BGP == nil {
			continue
		}
		if !spec.BGPField {
			b.errorf(p.key("bgp"), "only routers and katrans speak BGP (this node is a %s)", n.Kind)
			continue
		}
		n.BGP = b.bgpTimers(rn.BGP, p.key("bgp"))
	}
}

func (b *builder) bgpTimers(rb *rawBGP, p fieldPath) *BGP {
	bgp := &BGP{Hold: DefaultHold, Keepalive: DefaultKeepalive}
	if rb.ASN != nil {
		switch asn := *rb.ASN; {
		case asn < 1 || asn > maxASN:
			b.errorf(p.key("asn"), "%d is out of range 1..%d", asn, maxASN)
		case asn == asTrans:
			b.errorf(p.key("asn"), "%d is AS_TRANS (RFC 6793), which no speaker may use as its own", asn)
		default:
			bgp.ASN = uint32(asn)
		}
	}
	if rb.Hold != nil {
		switch h := *rb.Hold; {
		case h != 0 && (h < 3 || h > maxHold):
			b.errorf(p.key("hold"), "%d seconds: a hold time is 0 (no keepalives) or 3..%d (RFC 4271)", h, maxHold)
		default:
			bgp.Hold = int(h)
			bgp.Keepalive = int(h) / 3
		}
	}
	if rb.Keepalive != nil {
		switch k := *rb.Keepalive; {
		case k < 0 || int(k) > bgp.Hold/3:
			b.errorf(p.key("keepalive"), "%d seconds: at most a third of the hold time (%d s), so that a lost keepalive does not end the session", k, bgp.Hold)
		default:
			bgp.Keepalive = int(k)
		}
	}
	return bgp
}

// deriveTier gives every BGP router its sessions to the katrans on its
// links that serve VIPs, those katrans their session back, speakers their
// ASNs, and static routers their multipath VIP routes.
func deriveTier(t *Topology) {
	for _, r := range t.Nodes {
		if r.Routing != RoutingBGP {
			continue
		}
		for _, ifc := range r.Interfaces {
			k := ifc.Peer.Node
			if k.Kind != KindKatran || len(t.VIPsServedBy(k)) == 0 || !sessionAddr(ifc).IsValid() || !sessionAddr(ifc.Peer).IsValid() {
				continue
			}
			if r.BGP == nil {
				r.BGP = &BGP{Hold: DefaultHold, Keepalive: DefaultKeepalive}
			}
			if k.BGP == nil {
				k.BGP = &BGP{Hold: DefaultHold, Keepalive: DefaultKeepalive}
			}
			r.BGP.Peers = append(r.BGP.Peers, BGPPeer{Node: k, Local: ifc})
			k.BGP.Peers = append(k.BGP.Peers, BGPPeer{Node: r, Local: ifc.Peer})
		}
	}
	for i, n := range t.Nodes {
		if n.BGP != nil && n.BGP.ASN == 0 {
			n.BGP.ASN = uint32(privateASNBase + i + 1)
		}
	}
}

// checkTier reports BGP blocks that would start no session, and ASNs two
// speakers of one session share (eBGP between them needs two).
func (b *builder) checkTier(t *Topology) {
	for _, n := range t.Nodes {
		if n.BGP == nil {
			continue
		}
		p := fieldPath{"nodes", n.Name, "bgp"}
		if len(n.BGP.Peers) == 0 {
			what := "no router with `routing: bgp` on its links"
			if n.Kind == KindRouter {
				what = "routing static, or no katran serving a VIP on its links"
			}
			b.keyErrorf(p, "%s has bgp but no BGP session: %s", n.Name, what)
			continue
		}
		for _, peer := range n.BGP.Peers {
			if peer.Node.BGP.ASN == n.BGP.ASN && n.Name < peer.Node.Name {
				b.keyErrorf(p, "%s and %s both have ASN %d: the sessions between a router and its katrans are eBGP, give them different ASNs", n.Name, peer.Node.Name, n.BGP.ASN)
			}
		}
	}
}

// tierAdvice says what a valid tier does not survive.
func (t *Topology) tierAdvice() []string {
	var advice []string
	for _, v := range t.VIPs {
		if v.Tier() && v.NAT() {
			advice = append(advice, fmt.Sprintf("%s is a NAT VIP on %d balancers: each keeps its own connection table, so the connections "+
				"through a balancer that fails break (DSR balancers share no state and lose none)", v, len(v.LBs)))
		}
	}
	return advice
}

func (bgp *BGP) raw() *rawBGP {
	asn, hold, keepalive := integer(bgp.ASN), integer(bgp.Hold), integer(bgp.Keepalive)
	return &rawBGP{ASN: &asn, Hold: &hold, Keepalive: &keepalive}
}
