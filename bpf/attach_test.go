//go:build linux

package bpf

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/dsrlab/dsrlab/internal/testns"
)

// TestAttachModes attaches every program to a veth in a fresh network
// namespace in native and in generic mode: loading proves the verifier
// accepts a program, attaching proves the kernel takes it in each mode.
func TestAttachModes(t *testing.T) {
	requireBPF(t)
	b := newBalancer(t)
	d := newDecap(t, realAddr)
	pass, err := LoadPass()
	if err != nil {
		skipIfUnsupported(t, err)
		t.Fatal(err)
	}
	defer pass.Close()

	testns.Enter(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "dsr0"}, PeerName: "dsr1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	link, err := netlink.LinkByName(veth.Name)
	if err != nil {
		t.Fatal(err)
	}

	modes := []struct {
		name   string
		flags  int
		attach uint32
	}{
		{"native", nl.XDP_FLAGS_DRV_MODE, nl.XDP_ATTACHED_DRV},
		{"generic", nl.XDP_FLAGS_SKB_MODE, nl.XDP_ATTACHED_SKB},
	}
	programs := map[string]*ebpf.Program{"balancer": b.Program(), "decap": d.Program(), "pass": pass}
	for _, m := range modes {
		for name, prog := range programs {
			if err := netlink.LinkSetXdpFdWithFlags(link, prog.FD(), m.flags); err != nil {
				t.Errorf("attach %s in %s mode: %v", name, m.name, err)
				continue
			}
			got, err := netlink.LinkByName(veth.Name)
			if err != nil {
				t.Fatal(err)
			}
			if xdp := got.Attrs().Xdp; xdp == nil || xdp.AttachMode != m.attach {
				t.Errorf("%s in %s mode: link reports %+v", name, m.name, xdp)
			}
			if err := netlink.LinkSetXdpFdWithFlags(link, -1, m.flags); err != nil {
				t.Fatalf("detach %s in %s mode: %v", name, m.name, err)
			}
		}
	}
}
