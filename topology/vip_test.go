package topology_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/topology"
)

func TestWeightsAndModes(t *testing.T) {
	topo := mustLoad(t, "testdata/valid/weights-nat.yaml")
	type real struct {
		node   string
		weight uint32
	}
	reals := func(v *topology.VIP) []real {
		var rs []real
		for _, r := range v.Reals {
			rs = append(rs, real{r.Node.Name, r.Weight})
		}
		return rs
	}
	dsr, nat := topo.VIPs[0], topo.VIPs[1]
	if dsr.Mode != topology.ModeDSR || dsr.NAT() {
		t.Errorf("vips[0]: Mode = %q, want the default dsr", dsr.Mode)
	}
	if want := []real{{"s1", 1}, {"s2", 3}, {"s3", 0}}; !slices.Equal(reals(dsr), want) {
		t.Errorf("vips[0]: Reals = %v, want %v", reals(dsr), want)
	}
	if nat.Mode != topology.ModeNAT || !nat.NAT() {
		t.Errorf("vips[1]: Mode = %q, want nat", nat.Mode)
	}
	if want := []real{{"n1", 1}, {"s1", 2}}; !slices.Equal(reals(nat), want) {
		t.Errorf("vips[1]: Reals = %v, want %v", reals(nat), want)
	}

	// Both modes reach the load balancer the same way.
	wantRoutes := []topology.Route{
		{Dst: prefix("10.99.0.1/32"), Via: addr("10.0.1.1")},
		{Dst: prefix("10.99.0.2/32"), Via: addr("10.0.1.1")},
	}
	if got := mustNode(t, topo, "r").Routes; !slices.Equal(got, wantRoutes) {
		t.Errorf("r: Routes = %v, want %v", got, wantRoutes)
	}
	wantSysctls := map[string]string{
		"net.ipv4.ip_forward":             "1",
		"net.ipv4.conf.all.rp_filter":     "0",
		"net.ipv4.conf.default.rp_filter": "0",
	}
	if got := mustNode(t, topo, "k").Sysctls; !maps.Equal(got, wantSysctls) {
		t.Errorf("k serves a NAT VIP: Sysctls = %v, want %v", got, wantSysctls)
	}
	if got := topo.VIPsBackedBy(mustNode(t, topo, "s1")); !slices.Equal(got, topo.VIPs) {
		t.Errorf("VIPsBackedBy(s1) = %v, want both VIPs", got)
	}
	if got := topo.VIPsBackedBy(mustNode(t, topo, "s3")); !slices.Equal(got, []*topology.VIP{dsr}) {
		t.Errorf("VIPsBackedBy(s3) = %v: a drained real still backs its VIP", got)
	}
	// n1 has no route to the client, which only DSR reals need.
	if n1 := mustNode(t, topo, "n1"); n1.Gateway.IsValid() {
		t.Errorf("n1: Gateway = %v, want none (two router links)", n1.Gateway)
	}

	out, err := topo.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- {node: s1, weight: 1}",
		"- {node: s3, weight: 0}",
		"mode: dsr",
		"mode: nat",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Resolved() lacks %q:\n%s", want, out)
		}
	}
}

func TestDSRKatranDoesNotForward(t *testing.T) {
	if got := mustNode(t, mustLoad(t, "../labs/dsr.yaml"), "katran").Sysctls; got != nil {
		t.Errorf("katran of a DSR-only lab: Sysctls = %v, want none: XDP_TX needs no forwarding", got)
	}
}

func TestHealthChecks(t *testing.T) {
	topo := mustLoad(t, "testdata/valid/healthchecks.yaml")
	want := []*topology.HealthCheck{
		{Type: topology.CheckTCP, Port: 80, Interval: time.Second, Timeout: 500 * time.Millisecond, Fall: 3, Rise: 2},
		{Type: topology.CheckHTTP, Port: 8080, Path: "/healthz", Interval: 2 * time.Second, Timeout: 300 * time.Millisecond, Fall: 1, Rise: 5},
		{Type: topology.CheckUDPEcho, Port: 53, Interval: time.Second, Timeout: 500 * time.Millisecond, Fall: 3, Rise: 2},
		{Type: topology.CheckTCP, Port: 22, Interval: time.Second, Timeout: 500 * time.Millisecond, Fall: 3, Rise: 2},
		nil, // none
	}
	for i, v := range topo.VIPs {
		if got := v.HealthCheck; (got == nil) != (want[i] == nil) || got != nil && *got != *want[i] {
			t.Errorf("vips[%d] %s: HealthCheck = %+v, want %+v", i, v, got, want[i])
		}
	}
}
