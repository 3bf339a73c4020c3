package topology

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

var (
	labNameRE  = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	nodeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	// prefixRE is what Docker accepts at the start of a container name;
	// node names are valid continuations of it.
	prefixRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	// sysctlRE is a dotted sysctl name. Its components become a path under
	// /proc/sys, so they may not be empty, "..", or contain a slash.
	sysctlRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-zA-Z0-9_-]+)+$`)
	// envRE is a portable environment variable name; "=" or a NUL in a
	// name would change what the container sees.
	envRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

const (
	// minMTU is the smallest MTU IPv4 allows (RFC 791), minMTU6 IPv6's
	// (RFC 8200).
	minMTU  = 68
	minMTU6 = 1280
	// maxMTU is the largest MTU a veth keeps once a native XDP program is
	// attached (measured, DESIGN.md pitfall 3). Links must work whichever
	// XDP mode katran ends up in, so nothing above it is accepted.
	maxMTU = 3498
)

// ValidLabName says why name cannot name a lab. Lab names end up in paths
// and labels, so commands that take one from the user check it too.
func ValidLabName(name string) error {
	if !labNameRE.MatchString(name) {
		return fmt.Errorf("%q is not a valid lab name: use 1 to 32 of a-z, 0-9 and -", name)
	}
	return nil
}

// builder turns a rawTopology into a Topology, collecting every structural
// problem on the way instead of stopping at the first.
type builder struct {
	file string
	doc  document
	errs ErrorList
	// ifaceAddrs records where each interface address was first seen.
	ifaceAddrs map[netip.Addr]fieldPath
}

func (b *builder) errorf(p fieldPath, format string, args ...any) {
	b.report(p, false, fmt.Sprintf(format, args...))
}

// keyErrorf reports a problem with a mapping key itself, such as a node
// name, at the key rather than at its value.
func (b *builder) keyErrorf(p fieldPath, format string, args ...any) {
	b.report(p, true, fmt.Sprintf(format, args...))
}

func (b *builder) report(p fieldPath, atKey bool, msg string) {
	line, col := b.doc.position(p, atKey)
	b.errs = append(b.errs, &Error{File: b.file, Line: line, Column: col, Field: p.String(), Msg: msg})
}

func (b *builder) build(raw *rawTopology) *Topology {
	t := &Topology{
		Name:     raw.Name,
		Prefix:   raw.Prefix,
		File:     b.file,
		Defaults: Defaults{Image: cmp.Or(raw.Defaults.Image, DefaultImage)},
		byName:   map[string]*Node{},
	}
	switch {
	case raw.Name == "":
		b.errorf(fieldPath{"name"}, "required")
	case ValidLabName(raw.Name) != nil:
		b.errorf(fieldPath{"name"}, "%v", ValidLabName(raw.Name))
	}
	if raw.Prefix != "" && !prefixRE.MatchString(raw.Prefix) {
		b.errorf(fieldPath{"prefix"}, "%q cannot start a container name: use a letter or digit, then letters, digits, _ . or -", raw.Prefix)
	}
	if len(raw.Nodes) > MaxNodes || len(raw.Links) > MaxLinks {
		// Every later check is at least linear in the size of the lab,
		// and some are quadratic: a lab this big is refused unread.
		b.errorf(fieldPath{"nodes"}, "%d nodes and %d links; a lab has at most %d nodes and %d links", len(raw.Nodes), len(raw.Links), MaxNodes, MaxLinks)
		return t
	}
	b.buildHosts(t, raw.Hosts, raw.VXLAN)
	b.buildNodes(t, raw.Nodes)
	b.buildLinks(t, raw.Links)
	b.buildPrograms(t, raw.Nodes)
	b.buildRouting(t, raw.Nodes)
	b.buildVIPs(t, raw.VIPs)
	b.buildTier(t, raw.Nodes)
	return t
}

func (b *builder) buildNodes(t *Topology, raws map[string]*rawNode) {
	if len(raws) == 0 {
		b.errorf(fieldPath{"nodes"}, "at least one node is required")
		return
	}
	for _, name := range slices.Sorted(maps.Keys(raws)) {
		p := fieldPath{"nodes", name}
		rn := cmp.Or(raws[name], &rawNode{}) // "name:" with no value
		if !nodeNameRE.MatchString(name) {
			b.keyErrorf(p, "%q is not a valid node name: use up to 32 of a-z, 0-9, _ and -, starting with a letter or digit", name)
		}
		n := &Node{
			Name:          name,
			Kind:          Kind(rn.Kind),
			ContainerName: t.Prefix + name,
			Image:         cmp.Or(rn.Image, t.Defaults.Image),
			Cmd:           rn.Cmd,
			Env:           rn.Env,
			Exec:          rn.Exec,
			Sysctls:       rn.Sysctls,
		}
		switch {
		case rn.Kind == "":
			b.errorf(p.key("kind"), "required (%s)", kindList())
		case !n.Kind.valid():
			b.errorf(p.key("kind"), "unknown kind %q (want %s)", rn.Kind, kindList())
		}
		for _, k := range slices.Sorted(maps.Keys(rn.Env)) {
			if !envRE.MatchString(k) {
				b.keyErrorf(p.key("env").key(k), "%q is not a valid environment variable name: use letters, digits and _, not starting with a digit", k)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(rn.Sysctls)) {
			if !sysctlRE.MatchString(k) {
				b.keyErrorf(p.key("sysctls").key(k), "%q is not a sysctl name: use dot-separated words of letters, digits, _ and -", k)
			}
		}
		b.nodeHost(t, n, rn.Host, p.key("host"))
		n.XDP = b.xdpMode(n, rn.XDP, rn.hasXDPProgram(), p.key("xdp"))
		n.Decap = b.decapMode(n, rn.Decap, p.key("decap"))
		t.Nodes = append(t.Nodes, n)
		t.byName[name] = n
	}
}

func (b *builder) xdpMode(n *Node, s string, hasProgram bool, p fieldPath) XDPMode {
	if !n.Kind.spec().XDPField && !hasProgram {
		// A node whose kind is already wrong gets no second error here.
		if s != "" && n.Kind.valid() {
			b.errorf(p, "only katran nodes and nodes with a program have an XDP mode, %q is a %s", n.Name, n.Kind)
		}
		return ""
	}
	switch m := XDPMode(cmp.Or(s, string(XDPAuto))); m {
	case XDPAuto, XDPNative, XDPGeneric:
		return m
	}
	b.errorf(p, "%q is not an XDP mode (want auto, native or generic)", s)
	return ""
}

func (b *builder) decapMode(n *Node, s string, p fieldPath) DecapMode {
	if !n.Kind.spec().DecapField {
		if s != "" && n.Kind.valid() {
			b.errorf(p, "only real nodes have a decap mode, %q is a %s", n.Name, n.Kind)
		}
		return ""
	}
	switch m := DecapMode(cmp.Or(s, string(DecapAuto))); m {
	case DecapAuto, DecapIPIP, DecapXDP:
		return m
	}
	b.errorf(p, "%q is not a decap mode (want auto, ipip or xdp)", s)
	return ""
}

// endpoint is one parsed "node:iface" of a link.
type endpoint struct {
	node  *Node
	iface string
}

func (b *builder) buildLinks(t *Topology, raws []rawLink) {
	used := map[string]fieldPath{} // "node:iface" -> the endpoint that took it
	for i, rl := range raws {
		p := fieldPath{"links", i}
		ok := len(rl.Endpoints) == 2
		if !ok {
			b.errorf(p.key("endpoints"), "a link needs exactly 2 endpoints, got %d", len(rl.Endpoints))
		}
		var ends []endpoint
		for j, s := range rl.Endpoints {
			ep, epOK := b.endpoint(t, s, p.key("endpoints").index(j), used)
			ok = ok && epOK
			ends = append(ends, ep)
		}
		// A wrong number of endpoints was reported above; comparing the
		// addresses with it would only repeat that.
		for _, f := range []struct {
			key   string
			addrs []string
		}{{"ipv4", rl.IPv4}, {"ipv6", rl.IPv6}} {
			if len(f.addrs) != 0 && len(f.addrs) != 2 && len(rl.Endpoints) == 2 {
				b.errorf(p.key(f.key), "%d addresses for 2 endpoints", len(f.addrs))
			}
		}
		addrs4 := b.linkAddrs(rl.IPv4, p.key("ipv4"), false)
		addrs6 := b.linkAddrs(rl.IPv6, p.key("ipv6"), true)
		mtu := 0
		if rl.MTU != nil {
			switch {
			case *rl.MTU < minMTU || *rl.MTU > maxMTU:
				b.errorf(p.key("mtu"), "%d is out of range %d..%d", *rl.MTU, minMTU, maxMTU)
			case *rl.MTU < minMTU6 && len(rl.IPv6) > 0:
				b.errorf(p.key("mtu"), "%d is below %d, the smallest MTU IPv6 allows (RFC 8200)", *rl.MTU, minMTU6)
			}
			mtu = int(*rl.MTU)
		}
		if ok {
			l := newLink(t.Name, ends[0], ends[1], addrs4, addrs6, mtu)
			b.crossHost(t, l, rl.MTU != nil, p)
			t.Links = append(t.Links, l)
		}
	}
}

// newLink joins two endpoints. addrs4 and addrs6 are nil or hold one
// prefix per end; mtu 0 means the default for the link's kinds of nodes.
func newLink(lab string, a, b endpoint, addrs4, addrs6 []netip.Prefix, mtu int) *Link {
	if mtu == 0 {
		mtu = DefaultMTU
		if a.node.Kind.spec().Encap || b.node.Kind.spec().Encap {
			mtu = EncapMTU
		}
	}
	l := &Link{MTU: mtu}
	l.A = &Interface{Node: a.node, Name: a.iface, MAC: macFor(lab, a.node.Name, a.iface), MTU: mtu, Link: l}
	l.B = &Interface{Node: b.node, Name: b.iface, MAC: macFor(lab, b.node.Name, b.iface), MTU: mtu, Link: l}
	l.A.Peer, l.B.Peer = l.B, l.A
	if addrs4 != nil {
		l.A.Addr, l.B.Addr = addrs4[0], addrs4[1]
	}
	if addrs6 != nil {
		l.A.Addr6, l.B.Addr6 = addrs6[0], addrs6[1]
	}
	a.node.Interfaces = append(a.node.Interfaces, l.A)
	b.node.Interfaces = append(b.node.Interfaces, l.B)
	return l
}

// macFor derives a locally administered unicast MAC from the names that
// identify an interface. The separator cannot occur in any of the names, so
// different interfaces never hash the same input.
func macFor(lab, node, iface string) net.HardwareAddr {
	sum := sha256.Sum256([]byte(lab + "/" + node + "/" + iface))
	return net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

func (b *builder) endpoint(t *Topology, s string, p fieldPath, used map[string]fieldPath) (endpoint, bool) {
	nodeName, iface, found := strings.Cut(s, ":")
	if !found || nodeName == "" || iface == "" {
		b.errorf(p, "%q is not of the form node:interface", s)
		return endpoint{}, false
	}
	ep := endpoint{node: t.Node(nodeName), iface: iface}
	ok := true
	if ep.node == nil {
		b.errorf(p, "unknown node %q", nodeName)
		ok = false
	}
	if why := badIfaceName(iface); why != "" {
		b.errorf(p, "%q is not a valid interface name: %s", iface, why)
		ok = false
	}
	if !ok {
		return endpoint{}, false
	}
	if prev, dup := used[s]; dup {
		b.errorf(p, "interface %s is already used by %s", s, prev)
		return endpoint{}, false
	}
	used[s] = p
	return ep, true
}

// badIfaceName says why the kernel would refuse name, or returns "".
func badIfaceName(name string) string {
	switch {
	case len(name) > 15:
		return "longer than 15 characters"
	case name == "." || name == "..":
		return "reserved by the kernel"
	case name == "lo":
		return "every container already has its loopback lo"
	case strings.ContainsAny(name, "/:"):
		return "contains / or :"
	case strings.ContainsFunc(name, unicode.IsSpace):
		return "contains white space"
	case strings.ContainsFunc(name, unicode.IsControl):
		return "contains a control character"
	}
	return ""
}

// linkAddrs parses the ipv4 or ipv6 list of a link, claiming each address
// for the lab. It returns nil unless there are two valid addresses in one
// subnet.
func (b *builder) linkAddrs(raws []string, p fieldPath, v6 bool) []netip.Prefix {
	ok := len(raws) == 2
	var addrs []netip.Prefix
	for i, s := range raws {
		a, aOK := b.ifaceAddr(s, p.index(i), v6)
		ok = ok && aOK
		addrs = append(addrs, a)
	}
	if !ok {
		return nil
	}
	if addrs[1].Masked() != addrs[0].Masked() {
		b.errorf(p.index(1), "%s is not in the subnet of %s (%s)", addrs[1], addrs[0], addrs[0].Masked())
		return nil
	}
	return addrs
}

func (b *builder) ifaceAddr(s string, p fieldPath, v6 bool) (netip.Prefix, bool) {
	pfx, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		b.errorf(p, "%q is not a valid CIDR", s)
		return pfx, false
	case !v6 && !pfx.Addr().Is4():
		b.errorf(p, "%q is not an IPv4 address", s)
		return pfx, false
	case v6 && !pfx.Addr().Is6() || pfx.Addr().Is4In6():
		b.errorf(p, "%q is not an IPv6 address", s)
		return pfx, false
	case !usable(pfx.Addr()):
		b.errorf(p, "%q is not a unicast host address", s)
		return pfx, false
	case v6 && pfx.Addr().IsLinkLocalUnicast():
		b.errorf(p, "%q is link-local: every interface has its own fe80:: address already", s)
		return pfx, false
	case !v6 && pfx.Bits() < 31 && pfx.Addr() == pfx.Masked().Addr():
		b.errorf(p, "%q is the network address of %s", s, pfx.Masked())
		return pfx, false
	case !v6 && pfx.Bits() < 31 && pfx.Addr() == broadcast(pfx):
		b.errorf(p, "%q is the broadcast address of %s", s, pfx.Masked())
		return pfx, false
	}
	if prev, dup := b.ifaceAddrs[pfx.Addr()]; dup {
		b.errorf(p, "address %s is already used by %s", pfx.Addr(), prev)
		return pfx, false
	}
	b.ifaceAddrs[pfx.Addr()] = p
	return pfx, true
}

func usable(a netip.Addr) bool {
	return !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])|host)
	return netip.AddrFrom4(a)
}

// buildRouting reads the explicit gateways and routes; it runs after the
// links because a next hop must be on one of the node's subnets.
func (b *builder) buildRouting(t *Topology, raws map[string]*rawNode) {
	for _, n := range t.Nodes {
		rn := raws[n.Name]
		if rn == nil {
			continue
		}
		p := fieldPath{"nodes", n.Name}
		if rn.Gateway != "" {
			n.Gateway, _ = b.nextHop(n, rn.Gateway, p.key("gateway"), family4)
		}
		if rn.Gateway6 != "" {
			n.Gateway6, _ = b.nextHop(n, rn.Gateway6, p.key("gateway6"), family6)
		}
		seen := map[netip.Prefix]int{}
		for i, rr := range rn.Routes {
			rp := p.key("routes").index(i)
			dst, dstOK := b.routeDst(rr.Dst, rp.key("dst"))
			via, viaOK := b.nextHop(n, rr.Via, rp.key("via"), familyOf(dst, dstOK))
			if j, dup := seen[dst]; dstOK && dup {
				b.errorf(rp.key("dst"), "%s is already routed by routes[%d]", dst, j)
				dstOK = false
			} else if dstOK {
				seen[dst] = i
			}
			if gw := map[bool]string{false: "gateway", true: "gateway6"}[dst.Addr().Is6()]; dstOK && dst.Bits() == 0 &&
				(gw == "gateway" && rn.Gateway != "" || gw == "gateway6" && rn.Gateway6 != "") {
				b.errorf(rp.key("dst"), "a default route and %s cannot both be set", gw)
				dstOK = false
			}
			if dstOK && viaOK {
				n.Routes = append(n.Routes, Route{Dst: dst, Via: via})
			}
		}
	}
}

func (b *builder) routeDst(s string, p fieldPath) (netip.Prefix, bool) {
	dst, err := netip.ParsePrefix(s)
	switch {
	case s == "":
		b.errorf(p, "required")
	case err != nil:
		b.errorf(p, "%q is not a valid CIDR", s)
	case dst.Addr().Is4In6():
		b.errorf(p, "%q is an IPv4-mapped IPv6 prefix: write the IPv4 prefix", s)
	case dst != dst.Masked():
		b.errorf(p, "%q has host bits set (did you mean %s?)", s, dst.Masked())
	default:
		return dst, true
	}
	return netip.Prefix{}, false
}

// family names the address family a next hop must have: the route's, or
// either when the route's destination is unusable (it was reported).
type family int

const (
	familyAny family = iota
	family4
	family6
)

func familyOf(dst netip.Prefix, ok bool) family {
	switch {
	case !ok:
		return familyAny
	case dst.Addr().Is4():
		return family4
	}
	return family6
}

func (f family) String() string {
	switch f {
	case family4:
		return "an IPv4 address"
	case family6:
		return "an IPv6 address"
	}
	return "an IP address"
}

// nextHop parses a gateway or route via, which the kernel only accepts on a
// subnet the node is directly attached to, in the route's family.
func (b *builder) nextHop(n *Node, s string, p fieldPath, want family) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(s)
	switch {
	case s == "":
		b.errorf(p, "required")
	case err != nil || addr.Is4In6() || want == family4 && !addr.Is4() || want == family6 && !addr.Is6():
		b.errorf(p, "%q is not %s", s, want)
	case addr.Zone() != "":
		b.errorf(p, "%q names an interface (%%%s): the next hop's interface is the one on its subnet; write %s", s, addr.Zone(), addr.WithZone(""))
	case !onLink(n, addr):
		b.errorf(p, "%s is not in the subnet of any interface of %q", addr, n.Name)
	default:
		return addr, true
	}
	return netip.Addr{}, false
}

func onLink(n *Node, a netip.Addr) bool {
	for _, ifc := range n.Interfaces {
		if p := ifc.AddrOf(a.Is6()); p.IsValid() && p.Contains(a) {
			return true
		}
	}
	return false
}

type vipKey struct {
	addr  netip.Addr
	port  uint16
	proto Proto
}

// vipUse is the first VIP that gave an address its mode.
type vipUse struct {
	mode  Mode
	index int
}

func (b *builder) buildVIPs(t *Topology, raws []rawVIP) {
	seen := map[vipKey]int{}
	modes := map[netip.Addr]vipUse{}
	for i, rv := range raws {
		p := fieldPath{"vips", i}
		v := &VIP{}
		ok := b.vipAddress(v, rv.Address, p.key("address"))
		switch {
		case rv.Port == nil:
			b.errorf(p.key("port"), "required")
			ok = false
		case *rv.Port < 0 || *rv.Port > 65535:
			b.errorf(p.key("port"), "%d is out of range 0..65535 (0: every port)", *rv.Port)
			ok = false
		default:
			v.Port = uint16(*rv.Port)
		}
		switch v.Proto = Proto(cmp.Or(rv.Proto, string(ProtoTCP))); v.Proto {
		case ProtoTCP, ProtoUDP:
		default:
			b.errorf(p.key("proto"), "%q is not a protocol (want tcp or udp)", rv.Proto)
			ok = false
		}
		switch v.Mode = Mode(cmp.Or(rv.Mode, string(ModeDSR))); v.Mode {
		case ModeDSR, ModeNAT:
			// The address decides where the router sends packets and
			// whether reals hold it on lo, which cannot be both ways.
			if prev, used := modes[v.Address]; used && prev.mode != v.Mode {
				b.errorf(p.key("mode"), "%s is a %s VIP in vips[%d]; an address cannot be both %s and %s", v.Address, prev.mode, prev.index, prev.mode, v.Mode)
			} else if !used && v.Address.IsValid() {
				modes[v.Address] = vipUse{v.Mode, i}
			}
		default:
			b.errorf(p.key("mode"), "%q is not a VIP mode (want dsr or nat)", rv.Mode)
			ok = false
		}
		switch v.Service = Service(cmp.Or(rv.Service, string(ServiceEcho))); v.Service {
		case ServiceEcho, ServiceNone:
		default:
			b.errorf(p.key("service"), "%q is not a VIP service (want echo or none)", rv.Service)
		}
		switch v.Hash = HashMode(cmp.Or(rv.Hash, string(HashFiveTuple))); v.Hash {
		case HashFiveTuple, HashNoSrcPort, HashDstPortOnly:
		default:
			b.errorf(p.key("hash"), "%q is not a hash mode (want five-tuple, no-src-port or dst-port-only)", rv.Hash)
		}
		if ok && v.Port == AnyPort {
			// The echo service and NAT rules are per port.
			switch {
			case v.Mode == ModeNAT:
				b.errorf(p.key("port"), "0 (every port) is for DSR VIPs; a NAT VIP needs its port")
			case v.Service == ServiceEcho:
				b.errorf(p.key("port"), "0 (every port) needs `service: none`: the echo service answers on one port")
			}
		}
		b.buildLBs(t, v, rv.LB, p.key("lb"))
		b.vipReals(t, v, rv.Reals, p.key("reals"))
		if ok {
			b.buildHealthCheck(v, rv.HealthCheck, p.key("healthcheck"))
		}
		if ok {
			k := vipKey{v.Address, v.Port, v.Proto}
			if j, dup := seen[k]; dup {
				b.errorf(p, "%s is already defined by vips[%d]", v, j)
			} else {
				seen[k] = i
			}
		}
		t.VIPs = append(t.VIPs, v)
	}
}

func (b *builder) vipAddress(v *VIP, s string, p fieldPath) bool {
	addr, err := netip.ParseAddr(s)
	switch {
	case s == "":
		b.errorf(p, "required")
	case err != nil || addr.Is4In6():
		b.errorf(p, "%q is not an IPv4 or IPv6 address", s)
	case addr.Zone() != "":
		b.errorf(p, "%q names an interface (%%%s): a VIP is an address of the lab, not of one interface; write %s", s, addr.Zone(), addr.WithZone(""))
	case !usable(addr) || addr.IsLinkLocalUnicast():
		b.errorf(p, "%q is not a unicast host address", s)
	default:
		if prev, dup := b.ifaceAddrs[addr]; dup {
			b.errorf(p, "address %s is already used by %s", addr, prev)
			return false
		}
		v.Address = addr
		return true
	}
	return false
}

func (b *builder) vipReals(t *Topology, v *VIP, raws []rawReal, p fieldPath) {
	if len(raws) == 0 {
		b.errorf(p, "at least one real is required")
		return
	}
	seen := map[string]int{}
	for i, rr := range raws {
		rp := p.index(i)
		weight := uint32(DefaultWeight)
		switch rr.form {
		case yaml.SequenceNode:
			b.errorf(rp, "expected a node name or a mapping {node, weight}, got a list")
			continue
		case yaml.MappingNode:
			if rr.Weight != nil {
				if *rr.Weight < 0 || *rr.Weight > MaxWeight {
					b.errorf(rp.key("weight"), "%d is out of range 0..%d", *rr.Weight, MaxWeight)
					continue
				}
				weight = uint32(*rr.Weight)
			}
			rp = rp.key("node")
		}
		if j, dup := seen[rr.Node]; dup && rr.Node != "" {
			b.errorf(rp, "real %q is already listed at reals[%d]", rr.Node, j)
			continue
		}
		seen[rr.Node] = i
		if n := b.vipNode(t, rr.Node, KindReal, rp); n != nil {
			v.Reals = append(v.Reals, Real{Node: n, Weight: weight})
		}
	}
}

// vipNode resolves a node a VIP refers to, which must be of kind want.
func (b *builder) vipNode(t *Topology, name string, want Kind, p fieldPath) *Node {
	n := t.Node(name)
	switch {
	case name == "":
		b.errorf(p, "required")
	case n == nil:
		b.errorf(p, "unknown node %q", name)
	case n.Kind != want:
		// A node with an invalid kind was reported already.
		if n.Kind.valid() {
			b.errorf(p, "node %q is a %s, not a %s", name, n.Kind, want)
		}
		return nil
	default:
		return n
	}
	return nil
}
