package netconf

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// VXLAN describes one end of a point-to-point VXLAN tunnel between two
// hosts: the link's VNI, this host's and the other host's underlay
// addresses, and the UDP port both ends use.
type VXLAN struct {
	VNI           uint32
	Local, Remote netip.Addr
	Port          int
	// MTU is required: without a lower device the kernel picks 1500,
	// which leaves no room for the encapsulation (50 bytes over IPv4, 70
	// over IPv6) on a 1500-byte underlay, and full-size frames vanish.
	MTU int
}

// maxVNI is the largest VXLAN network identifier: the header has 24 bits.
const maxVNI = 1<<24 - 1

// minMTU is the smallest MTU the kernel accepts on an Ethernet device.
const minMTU = 68

func (v VXLAN) validate() error {
	switch {
	case v.VNI == 0 || v.VNI > maxVNI:
		return fmt.Errorf("vni %d out of range 1-%d", v.VNI, maxVNI)
	case !v.Local.IsValid() || !v.Remote.IsValid():
		return fmt.Errorf("local %s and remote %s must both be set", v.Local, v.Remote)
	case v.Local.Is4() != v.Remote.Is4():
		return fmt.Errorf("local %s and remote %s are of different families", v.Local, v.Remote)
	case v.Remote.IsMulticast() || v.Remote.IsUnspecified():
		// A multicast group needs a lower device and learning; a tunnel
		// between two known hosts needs neither.
		return fmt.Errorf("remote %s is not a unicast address", v.Remote)
	case v.Port <= 0 || v.Port > 65535:
		// The kernel's own default (8472) is not the IANA port: make the
		// caller choose rather than end up with a port the other host does
		// not expect.
		return fmt.Errorf("udp port %d out of range 1-65535", v.Port)
	case v.MTU < minMTU:
		return fmt.Errorf("mtu %d is below %d", v.MTU, minMTU)
	}
	return nil
}

// CreateVXLAN creates a kernel VXLAN device whose UDP socket lives in host
// (the namespace that owns the underlay address) and whose interface is
// born in end.NS under end.Name with end.MAC, then turns its TX checksum
// offload off and brings it up.
//
// The kernel keeps a VXLAN device's socket in the namespace the request
// comes from even when the device is created in another one, so, as with
// CreateVeth, one request creates the device where it ends up: no temporary
// name appears in host, and a failed request (a name already taken in
// end.NS) leaves nothing anywhere. A later failure deletes the device.
//
// The remote is fixed, so the device sends everything there (the all-zeros
// forwarding entry the kernel installs for a unicast remote) and learns
// nothing.
func CreateVXLAN(host *Namespace, end Endpoint, v VXLAN) error {
	what := fmt.Sprintf("vxlan %s:%s (vni %d, %s -> %s:%d)", end.NS.name, end.Name, v.VNI, v.Local, v.Remote, v.Port)
	if err := v.validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	dev := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{
			Name:         end.Name,
			MTU:          v.MTU,
			HardwareAddr: end.MAC,
			Namespace:    netlink.NsFd(int(end.NS.ns)),
		},
		VxlanId: int(v.VNI),
		SrcAddr: v.Local.AsSlice(),
		Group:   v.Remote.AsSlice(),
		Port:    v.Port,
	}
	if err := host.h.LinkAdd(dev); err != nil {
		return fmt.Errorf("%s: create in %s: %w", what, host.name, err)
	}
	// Addresses are the caller's business, as on a veth end.
	if err := end.NS.ConfigureInterface(end.Name); err != nil {
		if derr := end.NS.DeleteLink(end.Name); derr != nil {
			err = errors.Join(err, derr)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Current opens dsrlab's own network namespace: on the host dsrlab runs
// on, that is the one holding the underlay, where VXLAN sockets belong.
func Current(name string) (*Namespace, error) {
	// Only threads locked by a goroutine (Namespace.Do's) ever leave
	// dsrlab's namespace, so an unlocked goroutine runs on one that is in it;
	// locking keeps it there between naming its thread and opening that
	// thread's namespace.
	runtime.LockOSThread()
	ns, err := netns.Get()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("%s: open own netns: %w", name, err)
	}
	// A handle on the namespace the process is in needs no setns, which
	// a process without CAP_SYS_ADMIN (a BGP speaker in a node
	// container) may not call.
	h, err := netlink.NewHandle()
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("%s: netlink handle: %w", name, err)
	}
	return &Namespace{name: name, ns: ns, h: h, own: true}, nil
}
