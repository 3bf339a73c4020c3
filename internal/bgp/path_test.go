package bgp

import (
	"net/netip"
	"testing"
)

// What a balancer announces is what a router reads back: prefix and next
// hop, for both families (IPv6 through MP_REACH_NLRI).
func TestVIPPathRoundTrip(t *testing.T) {
	for _, c := range []struct{ vip, nh string }{
		{"192.168.10.1/32", "10.0.1.2"},
		{"2001:db8::10/128", "fd00:1::2"},
	} {
		vip, nh := netip.MustParsePrefix(c.vip), netip.MustParseAddr(c.nh)
		p, err := vipPath(vip, nh)
		if err != nil {
			t.Fatal(err)
		}
		gotVIP, gotNH, err := pathRoute(p)
		if err != nil {
			t.Fatalf("%s: %v", c.vip, err)
		}
		if gotVIP != vip || gotNH != nh {
			t.Errorf("%s via %s read back as %s via %s", vip, nh, gotVIP, gotNH)
		}
	}
}
