package netconf

import (
	"net/netip"
	"slices"
	"testing"
)

// tier makes a router namespace with one veth to each of n balancer
// namespaces, addressed 10.9.i.1 (router) and 10.9.i.2 (balancer i).
func tier(t *testing.T, n int) (*Namespace, []*Namespace, []netip.Addr) {
	t.Helper()
	router := newNamespace(t, "router")
	var lbs []*Namespace
	var vias []netip.Addr
	for i := range n {
		lb := newNamespace(t, "lb")
		name := "eth" + string(rune('0'+i))
		if err := CreateVeth(Endpoint{router, name, nil}, Endpoint{lb, "eth0", nil}, 1500); err != nil {
			t.Fatal(err)
		}
		mine := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i), 1}), 24)
		theirs := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i), 2}), 24)
		if err := router.ConfigureInterface(name, mine); err != nil {
			t.Fatal(err)
		}
		if err := lb.ConfigureInterface("eth0", theirs); err != nil {
			t.Fatal(err)
		}
		lbs = append(lbs, lb)
		vias = append(vias, theirs.Addr())
	}
	return router, lbs, vias
}

func viasOf(t *testing.T, ns *Namespace, dst netip.Prefix) []netip.Addr {
	t.Helper()
	routes, err := ns.ECMPRoutes()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst == dst {
			var vias []netip.Addr
			for _, h := range r.NextHops {
				if !h.Dead {
					vias = append(vias, h.Via)
				}
			}
			slices.SortFunc(vias, netip.Addr.Compare)
			return vias
		}
	}
	return nil
}

func TestECMPRouteOverResilientGroup(t *testing.T) {
	router, lbs, vias := tier(t, 3)
	vip := netip.MustParsePrefix("192.168.10.1/32")
	if err := router.SetECMPRoute(vip, vias, ProtoBGP); err != nil {
		t.Fatal(err)
	}
	if got := viasOf(t, router, vip); !slices.Equal(got, vias) {
		t.Fatalf("next hops = %v, want %v", got, vias)
	}
	routes, _ := router.ECMPRoutes()
	if routes[0].Protocol != ProtoBGP || routes[0].NextHops[0].Dev == "" || routes[0].NextHops[0].Weight != 1 {
		t.Errorf("route = %+v, want proto bgp, devices and weight 1", routes[0])
	}
	// The same call again is no change (and no error on existing objects).
	if err := router.SetECMPRoute(vip, vias, ProtoBGP); err != nil {
		t.Fatalf("second identical set: %v", err)
	}
	// A balancer's container dies: its veth goes, and the kernel drops its
	// next hop from the group; the route keeps the others.
	if err := lbs[1].DeleteLink("eth0"); err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{vias[0], vias[2]}
	if got := viasOf(t, router, vip); !slices.Equal(got, want) {
		t.Fatalf("after a link went: next hops = %v, want %v", got, want)
	}
	// Asking for all three again leaves out the one with no link.
	if err := router.SetECMPRoute(vip, vias, ProtoBGP); err != nil {
		t.Fatal(err)
	}
	if got := viasOf(t, router, vip); !slices.Equal(got, want) {
		t.Fatalf("unreachable via installed: %v", got)
	}
	// Fewer members: the group shrinks in place.
	if err := router.SetECMPRoute(vip, vias[:1], ProtoBGP); err != nil {
		t.Fatal(err)
	}
	if got := viasOf(t, router, vip); !slices.Equal(got, vias[:1]) {
		t.Fatalf("next hops = %v, want %v", got, vias[:1])
	}
	// None reachable: the route goes.
	if err := router.SetECMPRoute(vip, []netip.Addr{vias[1]}, ProtoBGP); err != nil {
		t.Fatal(err)
	}
	if got := viasOf(t, router, vip); got != nil {
		t.Fatalf("route with no reachable next hop kept: %v", got)
	}
	if err := router.DeleteECMPRoute(vip); err != nil {
		t.Fatalf("deleting an absent route: %v", err)
	}
}

func TestECMPRouteDelete(t *testing.T) {
	router, _, vias := tier(t, 2)
	vip := netip.MustParsePrefix("192.168.10.2/32")
	other := netip.MustParsePrefix("192.168.10.3/32")
	for _, dst := range []netip.Prefix{vip, other} {
		if err := router.SetECMPRoute(dst, vias, ProtoStatic); err != nil {
			t.Fatal(err)
		}
	}
	if err := router.DeleteECMPRoute(vip); err != nil {
		t.Fatal(err)
	}
	if got := viasOf(t, router, vip); got != nil {
		t.Errorf("deleted route still there: %v", got)
	}
	// The members are shared: the other VIP's route keeps them.
	if got := viasOf(t, router, other); !slices.Equal(got, vias) {
		t.Errorf("other route = %v, want %v", got, vias)
	}
}

func TestRouteToReadsPlainAndGroupRoutes(t *testing.T) {
	router, _, vias := tier(t, 2)
	group := netip.MustParsePrefix("192.168.10.1/32")
	plain := netip.MustParsePrefix("192.168.10.2/32")
	if err := router.SetECMPRoute(group, vias, ProtoStatic); err != nil {
		t.Fatal(err)
	}
	if err := router.SetRoute(plain, vias[1]); err != nil {
		t.Fatal(err)
	}
	r, err := router.RouteTo(group)
	if err != nil || r == nil || r.Group == 0 || len(r.NextHops) != 2 {
		t.Fatalf("RouteTo(%s) = %+v, %v; want the group's two next hops", group, r, err)
	}
	r, err = router.RouteTo(plain)
	if err != nil || r == nil || r.Group != 0 || len(r.NextHops) != 1 || r.NextHops[0].Via != vias[1] || r.NextHops[0].Dev != "eth1" {
		t.Fatalf("RouteTo(%s) = %+v, %v; want one next hop %s on eth1", plain, r, err, vias[1])
	}
	if r, err := router.RouteTo(netip.MustParsePrefix("192.168.10.3/32")); r != nil || err != nil {
		t.Errorf("RouteTo(no route) = %+v, %v; want nil", r, err)
	}
	if err := router.SetLinkUp("eth0", false); err != nil {
		t.Fatal(err)
	}
	if state, _ := router.LinkState("eth0"); state != LinkDown {
		t.Errorf("eth0 state %q after SetLinkUp(false), want %q", state, LinkDown)
	}
}
