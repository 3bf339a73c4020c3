package labs_test

import (
	"maps"
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
// lab only where it must: its name, its container names and the VIP mode.
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
		}
	}
	v := nat.VIPs[0]
	if len(nat.VIPs) != 1 || v.String() != dsr.VIPs[0].String() || !v.NAT() || v.LB.Name != "katran" {
		t.Errorf("NAT lab VIPs = %v, want %s in NAT mode on katran", nat.VIPs, dsr.VIPs[0])
	}
	// The load balancer forwards translated packets in both directions.
	want := map[string]string{
		"net.ipv4.ip_forward":             "1",
		"net.ipv4.conf.all.rp_filter":     "0",
		"net.ipv4.conf.default.rp_filter": "0",
	}
	if got := nat.Node("katran").Sysctls; !maps.Equal(got, want) {
		t.Errorf("NAT lab katran: Sysctls = %v, want %v", got, want)
	}
}
