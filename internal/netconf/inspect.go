package netconf

import (
	"errors"
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

// Interfaces lists the namespace's interfaces with their IPv4 and global
// IPv6 addresses (not the link-local ones every interface has).
func (n *Namespace) Interfaces() ([]Interface, error) {
	links, err := dump(n.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("%s: list interfaces: %w", n.name, err)
	}
	out := make([]Interface, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		i := Interface{Name: a.Name, MAC: a.HardwareAddr.String(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0, Kind: l.Type(), XDP: xdpOf(l)}
		addrs, err := dump(func() ([]netlink.Addr, error) { return n.h.AddrList(l, netlink.FAMILY_ALL) })
		if err != nil {
			return nil, fmt.Errorf("%s: addresses of %s: %w", n.name, a.Name, err)
		}
		for _, ad := range addrs {
			if p, ok := prefixOf(ad.IPNet); ok && !p.Addr().IsLinkLocalUnicast() {
				i.Addrs = append(i.Addrs, p)
			}
		}
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DefaultGateways returns the gateways of the IPv4 and IPv6 default
// routes, where there are such routes.
func (n *Namespace) DefaultGateways() ([]netip.Addr, error) {
	routes, err := dump(func() ([]netlink.Route, error) { return n.h.RouteList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("%s: routes: %w", n.name, err)
	}
	var gws []netip.Addr
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified() && isDefault(r.Dst)) && r.Gw != nil {
			if gw, ok := netip.AddrFromSlice(r.Gw); ok {
				gws = append(gws, gw.Unmap())
			}
		}
	}
	return gws, nil
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits), true
}

// dumpAttempts bounds the retries of an interrupted dump.
const dumpAttempts = 5

// dump runs a netlink dump again when the kernel says a change interrupted
// it (NLM_F_DUMP_INTR): its answer may be incomplete. In a lab that
// happens when the kernel removes a veth end with its peer's namespace (a
// stopped container) during the dump.
func dump[T any](list func() ([]T, error)) ([]T, error) {
	for range dumpAttempts - 1 {
		out, err := list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return list()
}

// Counters are an interface's packet and byte counters, each way, as the
// kernel counts them for the interface itself (received: arrived on it).
type Counters struct {
	Name string `json:"name"`
	// State is what keeps it from passing packets (LinkDown,
	// LinkNoCarrier), or "" when it is up with a carrier.
	State     string `json:"state,omitempty"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxDropped uint64 `json:"rx_dropped"`
	TxDropped uint64 `json:"tx_dropped"`
}

// AllCounters reads the counters of every interface of the namespace in
// one netlink dump: a page that shows the whole lab every second asks for
// all of them at once.
func (n *Namespace) AllCounters() ([]Counters, error) {
	links, err := dump(n.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("%s: list interfaces: %w", n.name, err)
	}
	out := make([]Counters, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		c := Counters{Name: a.Name, State: stateOf(a)}
		if s := a.Statistics; s != nil {
			c.RxPackets, c.TxPackets, c.RxBytes, c.TxBytes = s.RxPackets, s.TxPackets, s.RxBytes, s.TxBytes
			c.RxDropped, c.TxDropped = s.RxDropped, s.TxDropped
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
