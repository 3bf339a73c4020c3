//go:build linux

package bpf

import (
	"slices"
	"testing"
)

// TestTierBalancersHoldTheSameRing: two balancers of a tier, configured
// with the same VIP through different histories (other VIPs first, reals
// listed in another order, a weight changed and set back), hold rings that
// name the same real at every entry, so a flow moved from one to the other
// by the router's ECMP keeps its real. A same-flow packet through both
// programs is encapsulated to the same real.
func TestTierBalancersHoldTheSameRing(t *testing.T) {
	reals := equal(realAt(1), realAt(2), realAt(3))
	reals[2].Weight = 2

	a := newConfigured(t)
	if err := a.SetVIP(tcpVIP, reals); err != nil {
		t.Fatal(err)
	}

	b := newConfigured(t)
	if err := b.SetVIP(udpVIP, equal(realAt(4), realAt(1))); err != nil {
		t.Fatal(err)
	}
	reordered := []Real{reals[2], reals[0], reals[1]}
	changed := slices.Clone(reordered)
	changed[1].Weight = 7
	for _, rs := range [][]Real{changed, reordered} {
		if err := b.SetVIP(tcpVIP, rs); err != nil {
			t.Fatal(err)
		}
	}

	ringA, err := a.Ring(tcpVIP)
	if err != nil {
		t.Fatal(err)
	}
	ringB, err := b.Ring(tcpVIP)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ringA {
		if !ringA[i].IsValid() || ringA[i] != ringB[i] {
			t.Fatalf("ring entry %d: %v on one balancer, %v on the other", i, ringA[i], ringB[i])
		}
	}

	for sport := uint16(40000); sport < 40064; sport++ {
		f := tcpFlow
		f.sport = sport
		in := f.frame()
		actA, outA := runXDP(t, a.Program(), in)
		actB, outB := runXDP(t, b.Program(), in)
		if actA != xdpTX || actB != xdpTX {
			t.Fatalf("port %d: verdicts %v and %v, want XDP_TX", sport, actA, actB)
		}
		// The outer destination (the real) is bytes 30..34 of the frame.
		if !slices.Equal(outA[30:34], outB[30:34]) {
			t.Fatalf("port %d: one balancer sends the flow to %v, the other to %v", sport, outA[30:34], outB[30:34])
		}
	}
}
