package netconf

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// XDPMode is how an XDP program is attached to an interface.
type XDPMode int

const (
	// XDPNative runs the program in the driver, before an skb exists.
	XDPNative XDPMode = iota + 1
	// XDPGeneric runs it on the skb path; slower per packet on real NICs but
	// available on every interface.
	XDPGeneric
)

func (m XDPMode) String() string {
	switch m {
	case XDPNative:
		return "native"
	case XDPGeneric:
		return "generic"
	}
	return "none"
}

func (m XDPMode) flags() int {
	if m == XDPNative {
		return nl.XDP_FLAGS_DRV_MODE
	}
	return nl.XDP_FLAGS_SKB_MODE
}

// AttachXDP attaches a program (by fd) to an interface through netlink. A
// netlink attachment belongs to the interface, not to this process, so the
// program keeps running after dsrlab exits and goes away with the interface.
func (n *Namespace) AttachXDP(ifname string, progFD int, mode XDPMode) error {
	return n.setXDP(ifname, progFD, mode)
}

// DetachXDP removes whatever program is attached in the given mode.
func (n *Namespace) DetachXDP(ifname string, mode XDPMode) error {
	return n.setXDP(ifname, -1, mode)
}

func (n *Namespace) setXDP(ifname string, fd int, mode XDPMode) error {
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("%s: interface %s: %w", n.name, ifname, err)
	}
	// netlink has no Handle variant of this call: it must run inside the
	// namespace, where the link's index means this link.
	err = n.Do(func() error { return netlink.LinkSetXdpFdWithFlags(link, fd, mode.flags()) })
	if err != nil {
		verb := "attach XDP (" + mode.String() + ") to"
		if fd < 0 {
			verb = "detach XDP (" + mode.String() + ") from"
		}
		return fmt.Errorf("%s: %s %s: %w", n.name, verb, ifname, err)
	}
	return nil
}

// XDPAttachment describes the program attached to an interface.
type XDPAttachment struct {
	ProgID uint32  `json:"prog_id,omitempty"`
	Mode   XDPMode `json:"mode,omitempty"` // 0 when nothing is attached
}

// MarshalText names the mode in JSON output.
func (m XDPMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads a mode back from JSON output.
func (m *XDPMode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "native":
		*m = XDPNative
	case "generic":
		*m = XDPGeneric
	case "none", "":
		*m = 0
	default:
		return fmt.Errorf("unknown XDP mode %q", b)
	}
	return nil
}

// XDP reads what is attached to an interface, from the kernel.
func (n *Namespace) XDP(ifname string) (XDPAttachment, error) {
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		return XDPAttachment{}, fmt.Errorf("%s: interface %s: %w", n.name, ifname, err)
	}
	return xdpOf(link), nil
}

func xdpOf(link netlink.Link) XDPAttachment {
	x := link.Attrs().Xdp
	if x == nil || !x.Attached {
		return XDPAttachment{}
	}
	a := XDPAttachment{ProgID: x.ProgId}
	switch x.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		a.Mode = XDPNative
	case nl.XDP_ATTACHED_SKB:
		a.Mode = XDPGeneric
	}
	return a
}

// ErrNotSupported means the kernel lacks a feature (a link kind, typically).
var ErrNotSupported = errors.New("not supported by this kernel")

// AddIPIPDevice creates a metadata-collecting ("external") IPIP device and
// brings it up. Such a device receives IPIP packets from any peer, which is
// what a real behind a load balancer needs. Kernels without ipip support
// answer EOPNOTSUPP to the request itself: that answer is the probe, wrapped
// as ErrNotSupported.
func (n *Namespace) AddIPIPDevice(name string) error {
	dev := &netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: name}, FlowBased: true}
	if err := n.h.LinkAdd(dev); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("%s: ipip device: %w", n.name, ErrNotSupported)
		}
		return fmt.Errorf("%s: create ipip device %s: %w", n.name, name, err)
	}
	if err := n.h.LinkSetUp(dev); err != nil {
		return fmt.Errorf("%s: set %s up: %w", n.name, name, err)
	}
	return nil
}
