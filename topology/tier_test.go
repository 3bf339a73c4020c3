package topology_test

import (
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/labs"
	"github.com/dsrlab/dsrlab/topology"
)

func TestTierLabDerivesBGP(t *testing.T) {
	topo := mustLoad(t, "../labs/dsr-tier.yaml")
	v := topo.VIPs[0]
	if !v.Tier() || v.LBNames() != "katran1,katran2,katran3" {
		t.Fatalf("VIP balancers = %s, want the three katrans", v.LBNames())
	}
	r := topo.Node("router")
	if r.Routing != topology.RoutingBGP {
		t.Errorf("router routing = %q, want bgp (the default for a tier)", r.Routing)
	}
	if len(r.ECMPRoutes) != 0 || slices.ContainsFunc(r.Routes, func(rt topology.Route) bool { return rt.Dst == v.Prefix() }) {
		t.Errorf("a BGP router got static VIP routes: %v %v", r.Routes, r.ECMPRoutes)
	}
	if r.Sysctls["net.ipv4.fib_multipath_hash_policy"] != "1" {
		t.Errorf("router sysctls %v: want L4 multipath hashing", r.Sysctls)
	}
	if r.BGP == nil || len(r.BGP.Peers) != 3 {
		t.Fatalf("router BGP = %+v, want sessions to the three katrans", r.BGP)
	}
	asns := map[uint32]string{r.BGP.ASN: "router"}
	for i, p := range r.BGP.Peers {
		k := topo.Node("katran" + string(rune('1'+i)))
		if p.Node != k || p.Addr() != k.Uplink().Addr.Addr() || p.LocalAddr() != k.Uplink().Peer.Addr.Addr() {
			t.Errorf("router peer %d = %s at %s from %s", i, p.Node.Name, p.Addr(), p.LocalAddr())
		}
		if k.BGP == nil || len(k.BGP.Peers) != 1 || k.BGP.Peers[0].Node != r || k.BGP.Peers[0].Addr() != p.LocalAddr() {
			t.Errorf("%s BGP = %+v, want one session to the router", k.Name, k.BGP)
			continue
		}
		if k.BGP.Hold != topology.DefaultHold || k.BGP.Keepalive != topology.DefaultKeepalive {
			t.Errorf("%s timers %d/%d, want the defaults", k.Name, k.BGP.Hold, k.BGP.Keepalive)
		}
		if prev, dup := asns[k.BGP.ASN]; dup || k.BGP.ASN < 4200000000 {
			t.Errorf("%s ASN %d (also %s): want its own private 4-byte ASN", k.Name, k.BGP.ASN, prev)
		}
		asns[k.BGP.ASN] = k.Name
	}
	for _, n := range topo.Nodes {
		if (n.Kind == topology.KindClient || n.Kind == topology.KindReal) && n.BGP != nil {
			t.Errorf("%s (%s) has a BGP speaker", n.Name, n.Kind)
		}
	}
}

func TestStaticTierRoutesOverAllKatrans(t *testing.T) {
	text := strings.Replace(string(mustRead(t, "../labs/dsr-tier.yaml")), "router:  {kind: router}", "router:  {kind: router, routing: static}", 1)
	topo, err := topology.Parse([]byte(text), "static-tier.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := topo.Node("router")
	want := []topology.ECMPRoute{{Dst: netip.MustParsePrefix("192.168.10.1/32"), Vias: []netip.Addr{
		netip.MustParseAddr("10.111.221.11"), netip.MustParseAddr("10.111.225.11"), netip.MustParseAddr("10.111.226.11")}}}
	if len(r.ECMPRoutes) != 1 || r.ECMPRoutes[0].Dst != want[0].Dst || !slices.Equal(r.ECMPRoutes[0].Vias, want[0].Vias) {
		t.Errorf("ECMP routes = %v, want %v", r.ECMPRoutes, want)
	}
	if r.BGP != nil || topo.Node("katran1").BGP != nil {
		t.Error("a static tier got BGP speakers")
	}
	if r.Sysctls["net.ipv4.fib_multipath_hash_policy"] != "1" {
		t.Errorf("router sysctls %v: want L4 multipath hashing", r.Sysctls)
	}
}

func TestReferenceLabRoutesStatically(t *testing.T) {
	topo, err := topology.Parse(labs.Reference, labs.ReferenceFile)
	if err != nil {
		t.Fatal(err)
	}
	r := topo.Node("router")
	if r.Routing != topology.RoutingStatic || r.BGP != nil || len(r.ECMPRoutes) != 0 {
		t.Errorf("reference router: routing %q, bgp %v, ecmp %v; want static, none, none", r.Routing, r.BGP, r.ECMPRoutes)
	}
	if _, ok := r.Sysctls["net.ipv4.fib_multipath_hash_policy"]; ok {
		t.Error("the reference router got multipath hashing it does not need")
	}
	if !slices.Contains(r.Routes, topology.Route{Dst: netip.MustParsePrefix("192.168.10.1/32"), Via: netip.MustParseAddr("10.111.221.11")}) {
		t.Errorf("reference router routes = %v, want the VIP via katran", r.Routes)
	}
}

func TestNATTierAdvice(t *testing.T) {
	// A NAT VIP has no tunnel to check through: its checks go too.
	text := strings.Replace(string(mustRead(t, "../labs/dsr-tier.yaml")), "    proto: tcp\n", "    proto: tcp\n    mode: nat\n", 1)
	text = regexp.MustCompile(`(?m)^    healthcheck: .*\n`).ReplaceAllString(text, "")
	topo, err := topology.Parse([]byte(text), "nat-tier.yaml")
	if err != nil {
		t.Fatal(err)
	}
	advice := strings.Join(topo.Advice(), "\n")
	if !strings.Contains(advice, "NAT VIP on 3 balancers") || !strings.Contains(advice, "break") {
		t.Errorf("advice = %q, want a word on NAT connections breaking with a balancer", advice)
	}
	if ref, _ := topology.Parse(labs.Reference, labs.ReferenceFile); len(ref.Advice()) != 0 {
		t.Errorf("reference lab advice: %v", ref.Advice())
	}
}

func TestTierResolvedRoundTrip(t *testing.T) {
	topo := mustLoad(t, "../labs/dsr-tier.yaml")
	out, err := topo.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	again, err := topology.Parse(out, "resolved.yaml")
	if err != nil {
		t.Fatalf("resolved tier does not parse: %v\n%s", err, out)
	}
	if again.VIPs[0].LBNames() != "katran1,katran2,katran3" || again.Node("router").BGP.ASN != topo.Node("router").BGP.ASN {
		t.Errorf("round trip lost the tier: %s, ASN %d", again.VIPs[0].LBNames(), again.Node("router").BGP.ASN)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
