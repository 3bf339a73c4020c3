package labs_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/labs"
	"github.com/dsrlab/dsrlab/topology"
)

func TestReferenceParses(t *testing.T) {
	topo, err := topology.Parse(labs.Reference, labs.ReferenceFile)
	if err != nil {
		t.Fatalf("the reference lab does not parse:\n%v", err)
	}
	if topo.Name != "dsr" || topo.File != labs.ReferenceFile || len(topo.Nodes) != 4 || len(topo.VIPs) != 1 {
		t.Errorf("reference lab: name %q, file %q, %d nodes, %d VIPs", topo.Name, topo.File, len(topo.Nodes), len(topo.VIPs))
	}
	if topo.VIPs[0].NAT() {
		t.Errorf("reference lab: VIP %s is in NAT mode", topo.VIPs[0])
	}
}

// TestNATMirrorsReference checks that the NAT lab differs from the reference
// lab only where it must: its name, its container names and the VIP mode;
// its IPv4 side is the reference lab's. Beyond the reference it may only
// add IPv6: an address on interfaces that have none there, and IPv6 VIPs
// on the reference VIP's port, translated by the same katran.
func TestNATMirrorsReference(t *testing.T) {
	dsr, err := topology.Parse(labs.Reference, labs.ReferenceFile)
	if err != nil {
		t.Fatal(err)
	}
	nat, err := topology.Parse(labs.NAT, labs.NATFile)
	if err != nil {
		t.Fatalf("the NAT lab does not parse:\n%v", err)
	}
	if nat.Name != "nat" || nat.Prefix != "nat-" {
		t.Errorf("NAT lab: name %q, prefix %q", nat.Name, nat.Prefix)
	}
	if len(nat.Nodes) != len(dsr.Nodes) {
		t.Fatalf("NAT lab has %d nodes, reference %d", len(nat.Nodes), len(dsr.Nodes))
	}
	for i, n := range nat.Nodes {
		d := dsr.Nodes[i]
		if n.Name != d.Name || n.Kind != d.Kind || n.ContainerName != "nat-"+d.Name {
			t.Errorf("node %s (%s, container %s), reference %s (%s)", n.Name, n.Kind, n.ContainerName, d.Name, d.Kind)
		}
		for j, ifc := range n.Interfaces {
			if ifc.Name != d.Interfaces[j].Name || ifc.Addr != d.Interfaces[j].Addr {
				t.Errorf("%s %s, reference %s %s", ifc, ifc.Addr, d.Interfaces[j], d.Interfaces[j].Addr)
			}
			if d6 := d.Interfaces[j].Addr6; d6.IsValid() && ifc.Addr6 != d6 {
				t.Errorf("%s %s, reference %s %s", ifc, ifc.Addr6, d.Interfaces[j], d6)
			}
		}
	}
	ref := dsr.VIPs[0]
	var v4, v6 []*topology.VIP
	for _, v := range nat.VIPs {
		if !v.NAT() || v.LBNames() != "katran" || v.Port != ref.Port || v.Proto != ref.Proto {
			t.Errorf("NAT lab VIP %s (mode %s, lb %s), want port %d/%s in NAT mode on katran", v, v.Mode, v.LBNames(), ref.Port, ref.Proto)
		}
		if v.Is6() {
			v6 = append(v6, v)
		} else {
			v4 = append(v4, v)
		}
	}
	if len(v4) != 1 || v4[0].String() != ref.String() {
		t.Errorf("NAT lab IPv4 VIPs = %v, want %s", v4, ref)
	}
	if len(v6) != 1 {
		t.Errorf("NAT lab IPv6 VIPs = %v, want one beside %s", v6, ref)
	}
	// The load balancer forwards translated packets in both directions, of
	// both families.
	want := map[string]string{
		"net.ipv4.ip_forward":             "1",
		"net.ipv4.conf.all.rp_filter":     "0",
		"net.ipv4.conf.default.rp_filter": "0",
	}
	got := nat.Node("katran").Sysctls
	ipv4 := maps.Clone(got)
	maps.DeleteFunc(ipv4, func(k, _ string) bool { return !strings.HasPrefix(k, "net.ipv4.") })
	if !maps.Equal(ipv4, want) || got["net.ipv6.conf.all.forwarding"] != "1" {
		t.Errorf("NAT lab katran: Sysctls = %v, want %v and IPv6 forwarding", got, want)
	}
}
