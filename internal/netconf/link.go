package netconf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Endpoint is one end of a veth link.
type Endpoint struct {
	NS   *Namespace
	Name string
	MAC  net.HardwareAddr
}

// link looks an interface up: nil, and no error, when there is none.
func (n *Namespace) link(name string) (netlink.Link, error) {
	l, err := n.h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%s: interface %s: %w", n.name, name, err)
	}
	return l, nil
}

// LinkExists reports whether an interface of that name exists.
func (n *Namespace) LinkExists(name string) (bool, error) {
	l, err := n.link(name)
	return l != nil, err
}

// Link states that keep an interface from passing packets (LinkState).
const (
	LinkMissing   = "missing"
	LinkDown      = "down"       // administratively
	LinkNoCarrier = "no carrier" // up, but its peer or lower device is not
)

// LinkState says what keeps an interface from passing packets: one of
// the Link* states, or "" when it is up with a carrier.
func (n *Namespace) LinkState(name string) (string, error) {
	link, err := n.link(name)
	switch {
	case err != nil:
		return "", err
	case link == nil:
		return LinkMissing, nil
	}
	return stateOf(link.Attrs()), nil
}

func stateOf(a *netlink.LinkAttrs) string {
	switch {
	case a.Flags&net.FlagUp == 0:
		return LinkDown
	case a.RawFlags&unix.IFF_LOWER_UP == 0:
		return LinkNoCarrier
	}
	return ""
}

// DeleteLink removes an interface (a veth takes its peer with it).
//
// An interface already gone is no error: the kernel removes a veth end
// whose peer's namespace is being destroyed (a stopped container) on its
// own, from a work queue, and may do so between the lookup and the delete.
func (n *Namespace) DeleteLink(name string) error {
	link, err := n.link(name)
	if err != nil || link == nil {
		return err
	}
	if err := n.h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%s: delete %s: %w", n.name, name, err)
	}
	return nil
}

// CreateVeth creates a veth pair whose ends are born in their final
// namespaces under their final names. The kernel does this in one request,
// so a failure leaves nothing behind, and no end ever appears in the host
// namespace where it could clash with or be left among the host's interfaces.
func CreateVeth(a, b Endpoint, mtu int) error {
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: a.Name, MTU: mtu, HardwareAddr: a.MAC},
		PeerName:         b.Name,
		PeerHardwareAddr: b.MAC,
		PeerMTU:          uint32(mtu),
		PeerNamespace:    netlink.NsFd(int(b.NS.ns)),
	}
	if err := a.NS.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s:%s <-> %s:%s: %w", a.NS.name, a.Name, b.NS.name, b.Name, err)
	}
	return nil
}

// ConfigureInterface gives an interface its addresses (the invalid ones
// are skipped), turns TX checksum offload off and brings it up.
//
// Offload must be off because a frame that becomes an XDP frame on its way
// (native XDP on the path) loses CHECKSUM_PARTIAL, and the receiver would see
// a TCP checksum that was never filled in.
func (n *Namespace) ConfigureInterface(name string, addrs ...netip.Prefix) error {
	link, err := n.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: interface %s: %w", n.name, name, err)
	}
	for _, addr := range addrs {
		if !addr.IsValid() {
			continue
		}
		a := &netlink.Addr{IPNet: ipNet(addr)}
		if addr.Addr().Is6() {
			// Usable at once: the lab's addresses are unique by
			// validation, and DAD would hold them back.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := n.h.AddrReplace(link, a); err != nil {
			return fmt.Errorf("%s: add %s to %s: %w", n.name, addr, name, err)
		}
	}
	if err := n.DisableTxChecksum(name); err != nil {
		return err
	}
	if err := n.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s: set %s up: %w", n.name, name, err)
	}
	return nil
}

// DisableTxChecksum turns off every tx-checksum-* feature of an interface.
func (n *Namespace) DisableTxChecksum(name string) error {
	return n.withEthtool(func(et *ethtool.Ethtool) error {
		on, err := txChecksumFeatures(et, name)
		if err != nil || len(on) == 0 {
			return err
		}
		off := map[string]bool{}
		for _, f := range on {
			off[f] = false
		}
		if err := et.Change(name, off); err != nil {
			return fmt.Errorf("%s: turn tx checksum offload off on %s: %w", n.name, name, err)
		}
		return nil
	})
}

// TxChecksumOn reports whether any tx-checksum-* feature is still on.
func (n *Namespace) TxChecksumOn(name string) (bool, error) {
	var on []string
	err := n.withEthtool(func(et *ethtool.Ethtool) (err error) {
		on, err = txChecksumFeatures(et, name)
		return err
	})
	return len(on) > 0, err
}

// withEthtool runs fn with an ethtool ioctl socket that belongs to the
// namespace, so interface names resolve there.
func (n *Namespace) withEthtool(fn func(*ethtool.Ethtool) error) error {
	return n.Do(func() error {
		et, err := ethtool.NewEthtool()
		if err != nil {
			return fmt.Errorf("%s: ethtool socket: %w", n.name, err)
		}
		defer et.Close()
		return fn(et)
	})
}

func txChecksumFeatures(et *ethtool.Ethtool, name string) ([]string, error) {
	features, err := et.Features(name)
	if err != nil {
		return nil, fmt.Errorf("ethtool features of %s: %w", name, err)
	}
	var on []string
	for f, enabled := range features {
		if enabled && strings.HasPrefix(f, "tx-checksum-") {
			on = append(on, f)
		}
	}
	return on, nil
}

// SetRoute adds or replaces a route; a zero-length dst is the default route
// of via's family.
func (n *Namespace) SetRoute(dst netip.Prefix, via netip.Addr) error {
	r := &netlink.Route{Gw: via.AsSlice()}
	what := "default route"
	if dst.Bits() > 0 {
		r.Dst = ipNet(dst)
		what = "route " + dst.String()
	}
	// Without a destination, netlink takes the family from the gateway.
	if err := n.h.RouteReplace(r); err != nil {
		return fmt.Errorf("%s: %s via %s: %w", n.name, what, via, err)
	}
	return nil
}

// AddLoopbackAddress puts a host address on lo, the way a real accepts
// traffic for a VIP without answering ARP for it.
func (n *Namespace) AddLoopbackAddress(addr netip.Addr) error {
	lo, err := n.h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("%s: lo: %w", n.name, err)
	}
	p := netip.PrefixFrom(addr, addr.BitLen())
	a := &netlink.Addr{IPNet: ipNet(p)}
	if addr.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := n.h.AddrReplace(lo, a); err != nil {
		return fmt.Errorf("%s: add %s to lo: %w", n.name, p, err)
	}
	if err := n.h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("%s: set lo up: %w", n.name, err)
	}
	return nil
}

// Stats returns an interface's counters.
func (n *Namespace) Stats(name string) (*netlink.LinkStatistics, error) {
	link, err := n.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("%s: interface %s: %w", n.name, name, err)
	}
	if link.Attrs().Statistics == nil {
		return nil, fmt.Errorf("%s: no statistics for %s", n.name, name)
	}
	return link.Attrs().Statistics, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
