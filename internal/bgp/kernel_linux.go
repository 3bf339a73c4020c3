package bgp

import (
	"net/netip"

	"github.com/dsrlab/dsrlab/internal/netconf"
)

// KernelRoutes is the Installer of a router in a lab: one resilient
// multipath route per VIP in the router's network namespace, marked as
// BGP's (`proto bgp`), so a katran leaving or joining moves only its own
// flows.
type KernelRoutes struct{ NS *netconf.Namespace }

func (k KernelRoutes) Set(dst netip.Prefix, vias []netip.Addr) error {
	return k.NS.SetECMPRoute(dst, vias, netconf.ProtoBGP)
}

func (k KernelRoutes) Delete(dst netip.Prefix) error { return k.NS.DeleteECMPRoute(dst) }
