package lab

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// staticTier is labs/dsr-tier.yaml with the router's routes written by up
// (a resilient ECMP group) instead of learned over BGP: the fake runtime
// runs no BGP speakers.
func staticTier(t *testing.T) *topology.Topology {
	t.Helper()
	text := strings.Replace(string(readLab(t, "dsr-tier.yaml")), "router:  {kind: router}", "router:  {kind: router, routing: static}", 1)
	return parseLab(t, text)
}

func TestStaticTierBalancesThroughEveryKatran(t *testing.T) {
	rt := fakeLab(t)
	topo := staticTier(t)
	mustUp(t, rt, topo)
	checks, err := Verify(context.Background(), one(rt), topo)
	if err != nil {
		t.Fatal(err)
	}
	var lbs []string
	for _, c := range checks {
		if !c.Pass {
			t.Errorf("verify %s from %s through %q: %s", c.VIP, c.Client, c.LB, c.Reason)
		}
		lbs = append(lbs, c.LB)
	}
	slices.Sort(lbs)
	if want := []string{"katran1", "katran2", "katran3"}; !slices.Equal(lbs, want) {
		t.Errorf("verify went through %v, want one check per katran %v", lbs, want)
	}

	// The router holds one multipath route over the three.
	ns := openNode(t, rt, topo, "router")
	routes, err := ns.ECMPRoutes()
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || len(routes[0].NextHops) != 3 {
		t.Fatalf("router ECMP routes = %+v, want the VIP over three next hops", routes)
	}

	// A drain reaches every katran of the VIP, and their rings stay equal.
	v := topo.VIPs[0]
	if err := SetRealWeight(topo, v, "real2", 0); err != nil {
		t.Fatal(err)
	}
	mustUp(t, rt, topo)
	var first []netip.Addr
	for _, k := range v.LBs {
		kns := openNode(t, rt, topo, k.Name)
		b, _, err := openBalancer(kns, k.Uplink().Name)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		ring, err := b.Ring(bpf.VIP{Addr: v.Address, Port: v.Port, Proto: bpf.ProtoTCP})
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(ring, netip.MustParseAddr("10.111.223.11")) {
			t.Errorf("%s still hashes new flows to the drained real2", k.Name)
		}
		if first == nil {
			first = ring
		} else if !slices.Equal(ring, first) {
			t.Errorf("%s's ring differs from %s's", k.Name, v.LBs[0].Name)
		}
	}
	mustVerify(t, rt, topo)
}

func openNode(t *testing.T, rt runtime.Runtime, topo *topology.Topology, node string) *netconf.Namespace {
	t.Helper()
	ns, err := NodeNamespace(context.Background(), one(rt), topo, node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns
}
