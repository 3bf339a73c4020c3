package netconf

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TCAttachment is a BPF program attached to an interface's clsact qdisc by
// a cls_bpf filter in direct-action mode.
type TCAttachment struct {
	Egress   bool   `json:"egress"`
	Priority uint16 `json:"priority"`
	ProgID   uint32 `json:"prog_id"`
	// Name is what the filter was given: the program's name.
	Name string `json:"name"`
}

// Direction names the hook: "ingress" or "egress".
func (a TCAttachment) Direction() string {
	if a.Egress {
		return "egress"
	}
	return "ingress"
}

// tcHandle is the filter handle dsrlab uses at every priority: a filter
// is known by its hook and priority, and replaced in place by them.
const tcHandle = 1

func tcParent(egress bool) uint32 {
	if egress {
		return netlink.HANDLE_MIN_EGRESS
	}
	return netlink.HANDLE_MIN_INGRESS
}

// AttachTC puts a program (by fd) on an interface's ingress or egress
// hook at a priority, through netlink: a clsact qdisc (added if missing)
// and a cls_bpf filter in direct-action mode, so the program's verdict is
// the packet's. Like an XDP attachment made through netlink, it belongs to
// the interface, not to this process. A filter already at that priority
// is replaced in one request: the hook is never without a program.
func (n *Namespace) AttachTC(ifname string, egress bool, priority uint16, progFD int, name string) error {
	link, err := n.h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("%s: interface %s: %w", n.name, ifname, err)
	}
	clsact := &netlink.GenericQdisc{QdiscType: "clsact", QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	if err := n.h.QdiscReplace(clsact); err != nil {
		return fmt.Errorf("%s: clsact qdisc on %s: %w", n.name, ifname, err)
	}
	f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: link.Attrs().Index, Parent: tcParent(egress),
		Handle: tcHandle, Priority: priority, Protocol: unix.ETH_P_ALL}, Fd: progFD, Name: name, DirectAction: true}
	if err := n.h.FilterReplace(f); err != nil {
		return fmt.Errorf("%s: attach %s to %s %s at priority %d: %w", n.name, name, ifname, TCAttachment{Egress: egress}.Direction(), priority, err)
	}
	return nil
}

// DetachTC removes the filter at a priority of an interface's hook; one
// that is not there is no error.
func (n *Namespace) DetachTC(ifname string, egress bool, priority uint16) error {
	link, err := n.link(ifname)
	if link == nil || err != nil {
		return err
	}
	f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: link.Attrs().Index, Parent: tcParent(egress),
		Handle: tcHandle, Priority: priority, Protocol: unix.ETH_P_ALL}}
	if err := n.h.FilterDel(f); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%s: detach the TC program of %s %s at priority %d: %w", n.name, ifname, TCAttachment{Egress: egress}.Direction(), priority, err)
	}
	return nil
}

// TC lists the BPF programs on an interface's clsact hooks, ingress then
// egress, by priority; none without a clsact qdisc, and none when the
// interface is gone: the kernel tears a stopped container's namespace down
// after the engine says it stopped, so its veth peers vanish under a reader
// that has just listed them. (A caller about to attach finds out about a
// missing interface when it attaches.)
func (n *Namespace) TC(ifname string) ([]TCAttachment, error) {
	link, err := n.link(ifname)
	if err != nil || link == nil {
		return nil, err
	}
	var out []TCAttachment
	for _, egress := range []bool{false, true} {
		filters, err := n.h.FilterList(link, tcParent(egress))
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			continue // no clsact qdisc
		}
		if err != nil {
			return nil, fmt.Errorf("%s: TC filters of %s: %w", n.name, ifname, err)
		}
		for _, f := range filters {
			if bf, ok := f.(*netlink.BpfFilter); ok && bf.Id != 0 {
				out = append(out, TCAttachment{Egress: egress, Priority: bf.Priority, ProgID: uint32(bf.Id), Name: bf.Name})
			}
		}
	}
	return out, nil
}
