package netconf

import (
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
)

// Interface is what the kernel says about one interface.
type Interface struct {
	Name  string         `json:"name"`
	MAC   string         `json:"mac"`
	MTU   int            `json:"mtu"`
	Up    bool           `json:"up"`
	Addrs []netip.Prefix `json:"addrs,omitempty"`
	XDP   XDPAttachment  `json:"xdp"`
	Kind  string         `json:"kind"`
}

// Interfaces lists the namespace's interfaces with their IPv4 addresses.
func (n *Namespace) Interfaces() ([]Interface, error) {
	links, err := n.h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("%s: list interfaces: %w", n.name, err)
	}
	out := make([]Interface, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		i := Interface{Name: a.Name, MAC: a.HardwareAddr.String(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0, Kind: l.Type(), XDP: xdpOf(l)}
		addrs, err := n.h.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("%s: addresses of %s: %w", n.name, a.Name, err)
		}
		for _, ad := range addrs {
			if p, ok := prefixOf(ad.IPNet); ok {
				i.Addrs = append(i.Addrs, p)
			}
		}
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DefaultGateway returns the IPv4 default route's gateway, if any.
func (n *Namespace) DefaultGateway() (netip.Addr, error) {
	routes, err := n.h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: routes: %w", n.name, err)
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil {
			gw, _ := netip.AddrFromSlice(r.Gw.To4())
			return gw, nil
		}
	}
	return netip.Addr{}, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a, bits), true
}
