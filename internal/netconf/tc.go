package netconf

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// egressFilter is the one filter dsrlab puts on an interface's TC egress
// hook: its place (priority and handle) is fixed, so attaching again
// replaces it rather than adding a second one.
var egressFilter = netlink.FilterAttrs{
	Parent:   netlink.HANDLE_MIN_EGRESS,
	Handle:   netlink.MakeHandle(0, 1),
	Priority: 1,
	Protocol: unix.ETH_P_ALL,
}

// AttachTCEgress attaches a program (by fd, named name) to the interface's
// TC egress hook as a direct-action cls_bpf filter, adding the clsact
// qdisc it hangs on if the interface has none. Like a netlink XDP
// attachment, the filter belongs to the interface and outlives dsrlab.
func (n *Namespace) AttachTCEgress(ifname string, progFD int, name string) error {
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("%s: interface %s: %w", n.name, ifname, err)
	}
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := n.h.QdiscReplace(qdisc); err != nil {
		return fmt.Errorf("%s: add clsact qdisc to %s: %w", n.name, ifname, err)
	}
	attrs := egressFilter
	attrs.LinkIndex = link.Attrs().Index
	filter := &netlink.BpfFilter{FilterAttrs: attrs, Fd: progFD, Name: name, DirectAction: true}
	if err := n.h.FilterReplace(filter); err != nil {
		return fmt.Errorf("%s: attach %s to TC egress of %s: %w", n.name, name, ifname, err)
	}
	return nil
}

// TCEgress returns the ID of the program in dsrlab's egress filter on the
// interface; 0 when there is none (no clsact qdisc, or no such filter).
func (n *Namespace) TCEgress(ifname string) (uint32, error) {
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		return 0, fmt.Errorf("%s: interface %s: %w", n.name, ifname, err)
	}
	filters, err := n.h.FilterList(link, netlink.HANDLE_MIN_EGRESS)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return 0, nil // no clsact qdisc: no egress hook
	}
	if err != nil {
		return 0, fmt.Errorf("%s: list TC egress filters of %s: %w", n.name, ifname, err)
	}
	for _, f := range filters {
		if bf, ok := f.(*netlink.BpfFilter); ok && bf.Priority == egressFilter.Priority && bf.Handle == egressFilter.Handle {
			return uint32(bf.Id), nil
		}
	}
	return 0, nil
}
