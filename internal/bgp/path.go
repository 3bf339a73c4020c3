package bgp

import (
	"errors"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"google.golang.org/protobuf/types/known/anypb"
)

// vipPath is the BGP path announcing a VIP with a next hop of its family:
// NEXT_HOP for IPv4, MP_REACH_NLRI for IPv6 (which also lets it ride an
// IPv4 session).
func vipPath(vip netip.Prefix, nextHop netip.Addr) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: vip.Addr().String(), PrefixLen: uint32(vip.Bits())})
	if err != nil {
		return nil, err
	}
	origin, err := anypb.New(&api.OriginAttribute{Origin: uint32(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)})
	if err != nil {
		return nil, err
	}
	family := familyIPv4
	var hop *anypb.Any
	if vip.Addr().Is4() {
		hop, err = anypb.New(&api.NextHopAttribute{NextHop: nextHop.String()})
	} else {
		family = familyIPv6
		hop, err = anypb.New(&api.MpReachNLRIAttribute{Family: family, NextHops: []string{nextHop.String()}, Nlris: []*anypb.Any{nlri}})
	}
	if err != nil {
		return nil, err
	}
	return &api.Path{Family: family, Nlri: nlri, Pattrs: []*anypb.Any{origin, hop}}, nil
}

// pathRoute reads a received path's prefix and next hop.
func pathRoute(p *api.Path) (netip.Prefix, netip.Addr, error) {
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, err
	}
	prefix, err := netip.ParsePrefix(nlri.String())
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("prefix %q: %w", nlri.String(), err)
	}
	if p.IsWithdraw {
		return prefix, netip.Addr{}, nil
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, err
	}
	for _, a := range attrs {
		var ip []byte
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			ip = a.Value
		case *bgp.PathAttributeMpReachNLRI:
			ip = a.Nexthop
		default:
			continue
		}
		if nh, ok := netip.AddrFromSlice(ip); ok && !nh.Unmap().IsUnspecified() {
			return prefix, nh.Unmap(), nil
		}
	}
	return netip.Prefix{}, netip.Addr{}, errors.New("no next hop")
}
