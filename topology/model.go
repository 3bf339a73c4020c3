// Package topology is the lab model of dsrlab: it reads a topology file, fills
// in what can be derived (images, gateways, VIP routes, sysctls, MTUs, MACs)
// and validates the result, reporting every problem with its file position.
//
// The package is pure Go and makes no system calls, so the orchestrator can
// trust a *Topology to be complete and consistent before touching the host.
package topology

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// XDPMode selects how katran's balancer program is attached.
type XDPMode string

const (
	XDPAuto    XDPMode = "auto"
	XDPNative  XDPMode = "native"
	XDPGeneric XDPMode = "generic"
)

// DecapMode selects how a real strips the IPIP header: a kernel ipip device or
// an XDP program (for kernels without ipip, see DESIGN.md).
type DecapMode string

const (
	DecapAuto DecapMode = "auto"
	DecapIPIP DecapMode = "ipip"
	DecapXDP  DecapMode = "xdp"
)

// Proto is the transport protocol of a VIP.
type Proto string

const (
	ProtoTCP Proto = "tcp"
	ProtoUDP Proto = "udp"
)

// Mode is how a VIP's load balancer hands traffic to the reals.
type Mode string

const (
	// ModeDSR tunnels requests to the reals (IPIP), which answer the
	// client directly: the reference lab's flow.
	ModeDSR Mode = "dsr"
	// ModeNAT rewrites requests to the real (DNAT) and to come from the
	// load balancer (SNAT), so replies hair-pin back through it: the
	// baseline DSR is compared with.
	ModeNAT Mode = "nat"
)

const (
	// DefaultWeight is the weight of a real listed without one.
	DefaultWeight = 1
	// MaxWeight bounds a real's weight, so that the weights of a VIP's
	// reals can be expanded into a lookup table of reasonable size.
	MaxWeight = 1000
	// MaxNodes and MaxLinks bound the size of a lab. Each node is a
	// container and each link a veth pair; a host runs out of memory well
	// before these, and the bounds keep validation of hostile files fast.
	MaxNodes = 4096
	MaxLinks = 2 * MaxNodes
)

const (
	DefaultImage = "dsrlab/node"
	DefaultMTU   = 1500
	// EncapMTU is the default MTU of links with a katran or real endpoint:
	// IPIP adds 20 bytes, so a full-size client packet no longer fits a 1500
	// link once encapsulated (DESIGN.md pitfall 3). It stays well below the
	// ~3498 that veth accepts with native XDP attached.
	EncapMTU = 3000
)

// Topology is a resolved and validated lab.
type Topology struct {
	Name   string
	Prefix string
	// File is where the topology was read from, as given to Parse.
	File     string
	Defaults Defaults
	// Hosts are the machines the lab spans, sorted by name; the local
	// host is always one of them.
	Hosts     []*Host
	VXLANPort int
	Nodes     []*Node // sorted by name
	Links     []*Link // file order
	VIPs      []*VIP  // file order

	byName map[string]*Node
}

// Defaults are the values nodes inherit when they do not set their own.
type Defaults struct {
	Image string
}

// Node returns the node called name, or nil.
func (t *Topology) Node(name string) *Node {
	return t.byName[name]
}

// NodesOfKind returns the nodes of kind k, sorted by name.
func (t *Topology) NodesOfKind(k Kind) []*Node {
	var nodes []*Node
	for _, n := range t.Nodes {
		if n.Kind == k {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// VIPsServedBy returns the VIPs that n balances, alone or in a tier, in
// file order.
func (t *Topology) VIPsServedBy(n *Node) []*VIP {
	var vips []*VIP
	for _, v := range t.VIPs {
		if v.ServedBy(n) {
			vips = append(vips, v)
		}
	}
	return vips
}

// VIPsBackedBy returns the VIPs that have n among their reals, in file
// order, whatever their mode and weight: see VIP.NAT for what a real of a
// NAT VIP does not need.
func (t *Topology) VIPsBackedBy(n *Node) []*VIP {
	var vips []*VIP
	for _, v := range t.VIPs {
		for _, r := range v.Reals {
			if r.Node == n {
				vips = append(vips, v)
				break
			}
		}
	}
	return vips
}

// Node is one container of the lab.
type Node struct {
	Name          string
	Kind          Kind
	Host          *Host
	ContainerName string // Topology.Prefix + Name
	Image         string
	Cmd           string // run with sh -c; empty keeps the image's command
	Env           map[string]string
	// Exec are commands run in the container once its network is ready.
	Exec []string
	// Gateway and Gateway6 are the default routes' next hops; the zero
	// Addr means none.
	Gateway, Gateway6 netip.Addr
	// Routes holds the explicit routes in file order, then the derived ones.
	Routes  []Route
	Sysctls map[string]string
	XDP     XDPMode   // katran, or a node with a program
	Decap   DecapMode // real only
	// Program is the user's own XDP program on the node, or nil.
	Program *Program
	// Routing is how a router reaches the VIPs' balancers ("" on other
	// kinds); ECMPRoutes are the multipath VIP routes of a static router.
	Routing    Routing
	ECMPRoutes []ECMPRoute
	// BGP is the node's BGP speaker: on a router that learns the VIPs and
	// on the katrans that announce them to it; nil where none runs.
	BGP *BGP
	// TC are the user's TC programs on the node, in the file's order.
	TC []*Program
	// Interfaces are in the order of the links that create them.
	Interfaces []*Interface
}

// Uplink returns the first interface whose peer is on a forwarding node (a
// router), or nil.
// Katran sends encapsulated packets out of it (to Peer.MAC), and a real's
// tunnel address is its Addr.
func (n *Node) Uplink() *Interface {
	for _, ifc := range n.Interfaces {
		if ifc.Peer.Node.forwards() {
			return ifc
		}
	}
	return nil
}

// forwards tells whether the node routes other nodes' packets.
func (n *Node) forwards() bool {
	return n.Kind.spec().Forwards
}

// Route is a static route in a node's main table.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Link is a veth pair between two nodes.
type Link struct {
	A, B *Interface
	MTU  int
	// VXLAN is set for a link between nodes on different hosts: a VXLAN
	// tunnel over the hosts' underlay instead of a veth pair.
	VXLAN *VXLAN
}

// Interface is one end of a link, inside a node.
type Interface struct {
	Node  *Node
	Name  string
	Addr  netip.Prefix // zero if the link has no ipv4
	Addr6 netip.Prefix // zero if the link has no ipv6
	// MAC is fixed by the lab, node and interface names, so a lab comes
	// back with the same MACs every time and two labs never share one.
	MAC  net.HardwareAddr
	MTU  int
	Peer *Interface
	Link *Link
}

// AddrOf returns the interface's IPv6 or IPv4 address; zero if it has none.
func (i *Interface) AddrOf(v6 bool) netip.Prefix {
	if v6 {
		return i.Addr6
	}
	return i.Addr
}

// String returns "node:iface", the form used in topology files.
func (i *Interface) String() string {
	return i.Node.Name + ":" + i.Name
}

// VIP is a virtual service: its katrans (LBs) spread its traffic over Reals.
type VIP struct {
	Address netip.Addr
	// Port 0 (AnyPort) is every port of the address, like Katran's
	// port-less VIPs.
	Port    uint16
	Proto   Proto
	Hash    HashMode
	Mode    Mode
	Service Service
	// LBs are the balancers of the VIP, in file order: one, or a tier
	// that the routers spread the VIP's traffic over by ECMP. Every one
	// gets the same reals, weights and hash, so they pick the same real
	// for a flow.
	LBs   []*Node
	Reals []Real // file order
	// HealthCheck is how the LBs check the reals; nil: not checked.
	HealthCheck *HealthCheck
}

// ServedBy tells whether n is one of v's balancers.
func (v *VIP) ServedBy(n *Node) bool { return slices.Contains(v.LBs, n) }

// Tier tells whether v has more than one balancer.
func (v *VIP) Tier() bool { return len(v.LBs) > 1 }

// Prefix is the host route of the VIP's address (/32 or /128).
func (v *VIP) Prefix() netip.Prefix { return netip.PrefixFrom(v.Address, v.Address.BitLen()) }

// AnyPort as a VIP's port stands for all ports of its address.
const AnyPort = 0

// HashMode is what a VIP hashes to pick the real of a new flow.
type HashMode string

const (
	// HashFiveTuple hashes addresses, ports and protocol (the default).
	HashFiveTuple HashMode = "five-tuple"
	// HashNoSrcPort ignores the source port: every connection of one
	// client goes to the same real.
	HashNoSrcPort HashMode = "no-src-port"
	// HashDstPortOnly hashes only the destination: every client of one
	// port goes to the same real.
	HashDstPortOnly HashMode = "dst-port-only"
)

// PathMTU is the largest packet the encapsulated path from a balancer's
// uplink to a real carries: the smaller of the two links' MTUs (the
// balancer's to the router, the router's to the real).
func PathMTU(lbUplink *Interface, real *Node) int {
	mtu := lbUplink.MTU
	if up := real.Uplink(); up != nil {
		mtu = min(mtu, up.MTU)
	}
	return mtu
}

// Service is what answers on a VIP's port on its reals.
type Service string

const (
	// ServiceEcho is dsrlab's echo service (the default): it names the
	// real that answered and the client it saw.
	ServiceEcho Service = "echo"
	// ServiceNone leaves the port to the user's own server (iperf3,
	// nginx, ...), started with the real's cmd or exec.
	ServiceNone Service = "none"
)

// Is6 tells whether the VIP is an IPv6 address.
func (v *VIP) Is6() bool { return v.Address.Is6() }

// Tunnel is the address of r that v's traffic is sent to: for DSR the
// outer destination of the encapsulation (an IPv4 VIP goes IPIP to an IPv4
// real, else 4in6 to its IPv6 address; an IPv6 VIP goes IPv6-in-IPv6), for
// NAT the translated destination, always of the VIP's family. false when r
// has no such address.
func (v *VIP) Tunnel(r *Node) (netip.Addr, bool) {
	up := r.Uplink()
	if up == nil {
		return netip.Addr{}, false
	}
	if a := up.AddrOf(v.Is6()); a.IsValid() {
		return a.Addr(), true
	}
	if !v.Is6() && !v.NAT() && up.Addr6.IsValid() {
		return up.Addr6.Addr(), true
	}
	return netip.Addr{}, false
}

// reach says, for messages, how v's reals may be addressed.
func (v *VIP) reach() string {
	switch {
	case v.NAT():
		return "by an address of the same family"
	case v.Is6():
		return "IPv6-in-IPv6"
	}
	return "by IPIP, or 4in6 when they have only IPv6"
}

// NAT tells whether the VIP is served by address translation on LB rather
// than by DSR. Its reals then need neither the VIP on lo nor IPIP decap:
// they see connections from LB's uplink address to their own.
func (v *VIP) NAT() bool {
	return v.Mode == ModeNAT
}

// Real is one backend of a VIP.
type Real struct {
	Node *Node
	// Weight is the real's share of new flows relative to the VIP's other
	// reals, 0..MaxWeight. A real of weight 0 is drained: it stays
	// deployed but receives no new flows.
	Weight uint32
}

// String returns the VIP as "192.168.10.1:50007/tcp".
func (v *VIP) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(v.Address, v.Port), v.Proto)
}
