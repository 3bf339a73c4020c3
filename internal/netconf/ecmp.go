package netconf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"sort"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Nexthop object attributes (linux/nexthop.h); x/sys/unix names only some.
const (
	nhaID             = 1
	nhaGroup          = 2
	nhaGroupType      = 3
	nhaOIF            = 5
	nhaGateway        = 6
	nhaResGroup       = 12
	nhaResBuckets     = 1
	nhaResIdleTimer   = 2
	nhaResUnbalanced  = 3
	nexthopGrpTypeRes = 1
	rtaNHID           = 30
)

// Resilient groups keep a table of buckets, each owned by one next hop: a
// flow hashes to a bucket, so removing a next hop moves only the flows of
// its buckets, and adding one takes over only buckets idle for
// ecmpIdleTimer. Established flows never move when a balancer returns;
// there is no unbalanced timer, which would move busy buckets too.
const (
	ecmpBuckets   = 512
	ecmpIdleTimer = 1 // seconds
	userHZ        = 100
)

// Route protocols, shown by `ip route` as "proto static" and "proto bgp".
const (
	ProtoStatic = unix.RTPROT_STATIC
	ProtoBGP    = unix.RTPROT_BGP
)

// NextHop is one member of a multipath route as the kernel holds it.
type NextHop struct {
	Via    netip.Addr
	Dev    string
	Weight int
	// Dead or LinkDown: the kernel does not (or, for LinkDown, need not)
	// use it; Dead members are the ones whose device is gone.
	Dead, LinkDown bool
}

// ECMPRoute is a route over a nexthop group.
type ECMPRoute struct {
	Dst      netip.Prefix
	Protocol int
	Group    uint32
	NextHops []NextHop
}

// SetECMPRoute routes dst over every address in vias by one resilient
// nexthop group, with equal weights. A via that no connected subnet of the
// namespace contains (its link is gone: a balancer's container died) is
// left out; with none left the route is removed. The group is rewritten only
// when its members change, so calling again with the same vias moves no
// flow.
func (n *Namespace) SetECMPRoute(dst netip.Prefix, vias []netip.Addr, proto int) error {
	dst = dst.Masked()
	var members []uint32
	for _, via := range vias {
		oif, ok, err := n.connectedTo(via)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		id := nexthopID("via", via.String())
		if err := n.ensureNexthop(id, via, oif); err != nil {
			return err
		}
		members = append(members, id)
	}
	if len(members) == 0 {
		return n.DeleteECMPRoute(dst)
	}
	slices.Sort(members)
	members = slices.Compact(members)
	group := nexthopID("group", dst.String())
	current, _, err := n.nexthop(group)
	if err != nil {
		return err
	}
	if current == nil || !slices.Equal(groupIDs(current), members) {
		if err := n.writeGroup(group, members); err != nil {
			return fmt.Errorf("%s: nexthop group for %s: %w", n.name, dst, err)
		}
	}
	if err := n.routeToGroup(dst, group, proto); err != nil {
		return fmt.Errorf("%s: route %s over nexthop group %d: %w", n.name, dst, group, err)
	}
	return nil
}

// DeleteECMPRoute removes the route to dst and its nexthop group; absent
// ones are no error. Member next hops shared with other routes stay.
func (n *Namespace) DeleteECMPRoute(dst netip.Prefix) error {
	dst = dst.Masked()
	r := &netlink.Route{Dst: ipNet(dst), Table: unix.RT_TABLE_MAIN}
	if err := n.h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%s: delete route %s: %w", n.name, dst, err)
	}
	group := nexthopID("group", dst.String())
	err := n.nexthopRequest(unix.RTM_DELNEXTHOP, 0, nexthopMsg(unix.AF_UNSPEC), idAttr(group))
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%s: delete nexthop group of %s: %w", n.name, dst, err)
	}
	return nil
}

// ECMPRoutes reads the routes of the main table that go over a nexthop
// group, with the group's members as the kernel has them now.
func (n *Namespace) ECMPRoutes() ([]ECMPRoute, error) {
	var out []ECMPRoute
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		msg := nl.NewRtMsg()
		msg.Family = uint8(family)
		msgs, err := n.execute(unix.RTM_GETROUTE, unix.NLM_F_DUMP, msg, func(*nl.NetlinkRequest) {})
		if err != nil {
			return nil, fmt.Errorf("%s: list routes: %w", n.name, err)
		}
		for _, m := range msgs {
			r, ok := parseGroupRoute(m)
			if !ok {
				continue
			}
			group, _, err := n.nexthop(r.Group)
			if err != nil {
				return nil, err
			}
			for _, g := range group {
				hop, err := n.describeNexthop(g.id, g.weight)
				if err != nil {
					return nil, err
				}
				r.NextHops = append(r.NextHops, hop)
			}
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst.String() < out[j].Dst.String() })
	return out, nil
}

func parseGroupRoute(m []byte) (ECMPRoute, bool) {
	if len(m) < unix.SizeofRtMsg {
		return ECMPRoute{}, false
	}
	msg := nl.DeserializeRtMsg(m)
	if msg.Table != unix.RT_TABLE_MAIN || msg.Type != unix.RTN_UNICAST {
		return ECMPRoute{}, false
	}
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofRtMsg:])
	if err != nil {
		return ECMPRoute{}, false
	}
	r := ECMPRoute{Protocol: int(msg.Protocol)}
	var dst netip.Addr
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_DST:
			dst, _ = netip.AddrFromSlice(a.Value)
		case rtaNHID:
			if len(a.Value) == 4 {
				r.Group = native.Uint32(a.Value)
			}
		}
	}
	if r.Group == 0 || !dst.IsValid() {
		return ECMPRoute{}, false
	}
	r.Dst = netip.PrefixFrom(dst, int(msg.Dst_len))
	return r, true
}

// connectedTo finds the interface whose subnet holds via.
func (n *Namespace) connectedTo(via netip.Addr) (int, bool, error) {
	family := unix.AF_INET
	if via.Is6() {
		family = unix.AF_INET6
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return n.h.AddrList(nil, family) })
	if err != nil {
		return 0, false, fmt.Errorf("%s: list addresses: %w", n.name, err)
	}
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if ok && p.Bits() < p.Addr().BitLen() && p.Masked().Contains(via) {
			return a.LinkIndex, true, nil
		}
	}
	return 0, false, nil
}

// nexthopID derives an object ID from what it stands for, so that every
// run (and the BGP speaker, and `up`) names the same group the same way
// without keeping a table. IDs stay below 2^31 and are never 0.
func nexthopID(kind, key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(kind + "/" + key))
	return h.Sum32()&0x7fffffff | 1
}

type groupMember struct {
	id     uint32
	weight int
}

func groupIDs(g []groupMember) []uint32 {
	ids := make([]uint32, len(g))
	for i, m := range g {
		ids[i] = m.id
	}
	slices.Sort(ids)
	return ids
}

// ensureNexthop creates the single next hop id unless it already exists
// as asked: replacing a member of a resilient group is not needed then.
func (n *Namespace) ensureNexthop(id uint32, via netip.Addr, oif int) error {
	_, attrs, err := n.nexthop(id)
	if err != nil {
		return err
	}
	if attrs != nil {
		gw, _ := netip.AddrFromSlice(attrs[nhaGateway])
		if gw == via && len(attrs[nhaOIF]) == 4 && int(native.Uint32(attrs[nhaOIF])) == oif {
			return nil
		}
	}
	family := unix.AF_INET
	if via.Is6() {
		family = unix.AF_INET6
	}
	oifAttr := make([]byte, 4)
	native.PutUint32(oifAttr, uint32(oif))
	err = n.nexthopRequest(unix.RTM_NEWNEXTHOP, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, nexthopMsg(family),
		idAttr(id), nl.NewRtAttr(nhaGateway, via.AsSlice()), nl.NewRtAttr(nhaOIF, oifAttr))
	if err != nil {
		return fmt.Errorf("%s: next hop %s: %w", n.name, via, err)
	}
	return nil
}

func (n *Namespace) writeGroup(id uint32, members []uint32) error {
	entries := make([]byte, 8*len(members))
	for i, m := range members {
		native.PutUint32(entries[8*i:], m) // weight byte 0 = weight 1
	}
	groupType := make([]byte, 2)
	native.PutUint16(groupType, nexthopGrpTypeRes)
	res := nl.NewRtAttr(unix.NLA_F_NESTED|nhaResGroup, nil)
	buckets := make([]byte, 2)
	native.PutUint16(buckets, ecmpBuckets)
	res.AddRtAttr(nhaResBuckets, buckets)
	idle := make([]byte, 4)
	native.PutUint32(idle, ecmpIdleTimer*userHZ)
	res.AddRtAttr(nhaResIdleTimer, idle)
	res.AddRtAttr(nhaResUnbalanced, make([]byte, 4))
	return n.nexthopRequest(unix.RTM_NEWNEXTHOP, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, nexthopMsg(unix.AF_UNSPEC),
		idAttr(id), nl.NewRtAttr(nhaGroup, entries), nl.NewRtAttr(nhaGroupType, groupType), res)
}

func (n *Namespace) routeToGroup(dst netip.Prefix, group uint32, proto int) error {
	msg := nl.NewRtMsg()
	msg.Family = unix.AF_INET
	if dst.Addr().Is6() {
		msg.Family = unix.AF_INET6
	}
	msg.Dst_len = uint8(dst.Bits())
	msg.Protocol = uint8(proto)
	id := make([]byte, 4)
	native.PutUint32(id, group)
	_, err := n.execute(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK, msg, func(req *nl.NetlinkRequest) {
		req.AddData(nl.NewRtAttr(unix.RTA_DST, dst.Addr().AsSlice()))
		req.AddData(nl.NewRtAttr(rtaNHID, id))
	})
	return err
}

// nexthop reads object id: its group members (nil for a single next hop)
// and its attributes; nil attributes when there is no such object.
func (n *Namespace) nexthop(id uint32) ([]groupMember, map[int][]byte, error) {
	msgs, err := n.execute(unix.RTM_GETNEXTHOP, 0, nexthopMsg(unix.AF_UNSPEC), func(req *nl.NetlinkRequest) {
		req.AddData(idAttr(id))
	})
	if errors.Is(err, unix.ENOENT) || err == nil && len(msgs) == 0 {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: get nexthop %d: %w", n.name, id, err)
	}
	m := msgs[0]
	if len(m) < 8 {
		return nil, nil, fmt.Errorf("%s: nexthop %d: short answer", n.name, id)
	}
	parsed, err := nl.ParseRouteAttr(m[8:])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: nexthop %d: %w", n.name, id, err)
	}
	attrs := map[int][]byte{0: m[:8]} // 0: the header, for flags
	for _, a := range parsed {
		attrs[int(a.Attr.Type&^unix.NLA_F_NESTED)] = a.Value
	}
	var group []groupMember
	for g := attrs[nhaGroup]; len(g) >= 8; g = g[8:] {
		group = append(group, groupMember{id: native.Uint32(g), weight: int(g[4]) + 1})
	}
	return group, attrs, nil
}

func (n *Namespace) describeNexthop(id uint32, weight int) (NextHop, error) {
	_, attrs, err := n.nexthop(id)
	if err != nil || attrs == nil {
		return NextHop{Weight: weight, Dead: true}, err
	}
	hop := NextHop{Weight: weight}
	hop.Via, _ = netip.AddrFromSlice(attrs[nhaGateway])
	if oif := attrs[nhaOIF]; len(oif) == 4 {
		if l, err := n.h.LinkByIndex(int(native.Uint32(oif))); err == nil {
			hop.Dev = l.Attrs().Name
		}
	}
	flags := native.Uint32(attrs[0][4:8])
	hop.Dead = flags&unix.RTNH_F_DEAD != 0
	hop.LinkDown = flags&unix.RTNH_F_LINKDOWN != 0
	return hop, nil
}

func nexthopMsg(family int) nl.NetlinkRequestData {
	return rawData{byte(family), 0, 0, 0, 0, 0, 0, 0} // struct nhmsg
}

func idAttr(id uint32) *nl.RtAttr {
	b := make([]byte, 4)
	native.PutUint32(b, id)
	return nl.NewRtAttr(nhaID, b)
}

func (n *Namespace) nexthopRequest(typ, flags int, msg nl.NetlinkRequestData, attrs ...*nl.RtAttr) error {
	_, err := n.execute(typ, flags|unix.NLM_F_ACK, msg, func(req *nl.NetlinkRequest) {
		for _, a := range attrs {
			req.AddData(a)
		}
	})
	return err
}

// execute sends one rtnetlink request from inside the namespace: nexthop
// objects have no API in the netlink library, so their messages are built
// here, on a socket that belongs to the namespace.
func (n *Namespace) execute(typ, flags int, msg nl.NetlinkRequestData, fill func(*nl.NetlinkRequest)) ([][]byte, error) {
	var out [][]byte
	err := n.Do(func() error {
		req := nl.NewNetlinkRequest(typ, flags)
		req.AddData(msg)
		fill(req)
		var err error
		out, err = req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
	return out, err
}

// rawData is a fixed message header the library has no type for.
type rawData []byte

func (d rawData) Len() int          { return len(d) }
func (d rawData) Serialize() []byte { return d }

var native = binary.NativeEndian

// RouteTo reads the main table's route to exactly dst: a route over a
// nexthop group with its members, or a plain route as one next hop; nil
// when there is none.
func (n *Namespace) RouteTo(dst netip.Prefix) (*ECMPRoute, error) {
	dst = dst.Masked()
	routes, err := n.ECMPRoutes()
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		if r.Dst == dst {
			return &r, nil
		}
	}
	family := unix.AF_INET
	if dst.Addr().Is6() {
		family = unix.AF_INET6
	}
	plain, err := dump(func() ([]netlink.Route, error) {
		return n.h.RouteListFiltered(family, &netlink.Route{Dst: ipNet(dst), Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: route %s: %w", n.name, dst, err)
	}
	for _, r := range plain {
		out := &ECMPRoute{Dst: dst, Protocol: int(r.Protocol)}
		for _, hop := range append([]*netlink.NexthopInfo{{LinkIndex: r.LinkIndex, Gw: r.Gw, Flags: int(r.Flags)}}, r.MultiPath...) {
			if hop.Gw == nil {
				continue
			}
			via, _ := netip.AddrFromSlice(hop.Gw)
			h := NextHop{Via: via.Unmap(), Weight: hop.Hops + 1, LinkDown: hop.Flags&unix.RTNH_F_LINKDOWN != 0, Dead: hop.Flags&unix.RTNH_F_DEAD != 0}
			if l, err := n.h.LinkByIndex(hop.LinkIndex); err == nil {
				h.Dev = l.Attrs().Name
			}
			out.NextHops = append(out.NextHops, h)
		}
		return out, nil
	}
	return nil, nil
}

// SetLinkUp sets an interface administratively up or down, as a failing
// machine's links would go.
func (n *Namespace) SetLinkUp(name string, up bool) error {
	link, err := n.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: interface %s: %w", n.name, name, err)
	}
	set, what := n.h.LinkSetDown, "down"
	if up {
		set, what = n.h.LinkSetUp, "up"
	}
	if err := set(link); err != nil {
		return fmt.Errorf("%s: set %s %s: %w", n.name, name, what, err)
	}
	return nil
}
