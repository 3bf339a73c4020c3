package health

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/topology"
)

func loadLab(t *testing.T, file string, edit func(string) string) *topology.Topology {
	t.Helper()
	data, err := os.ReadFile("../../labs/" + file)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Parse([]byte(edit(string(data))), file)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// Marks number the reals by name, two per real (IPv4, IPv6 tunnel); the
// tunnels go from katran's uplink address of the family to the real's.
func TestTargetsAndMarks(t *testing.T) {
	checked := func(s string) string {
		return strings.ReplaceAll(s, "    reals: [real1, real2]\n", "    reals: [real1, real2]\n    healthcheck: {type: tcp}\n")
	}
	topo := loadLab(t, "dsr-dualstack.yaml", checked)
	k := topo.Node("katran")
	type want struct {
		vip, real string
		mark      uint32
		src, dst  string
	}
	var got []want
	for _, tg := range Targets(topo, k) {
		got = append(got, want{tg.VIP.String(), tg.Real.Name, tg.Mark, tg.Tunnel.Src.String(), tg.Tunnel.Dst.String()})
	}
	wantTargets := []want{
		{"192.168.10.1:50007/tcp", "real1", MarkBase + 0, k.Uplink().Addr.Addr().String(), topo.Node("real1").Uplink().Addr.Addr().String()},
		{"192.168.10.1:50007/tcp", "real2", MarkBase + 2, k.Uplink().Addr.Addr().String(), topo.Node("real2").Uplink().Addr.Addr().String()},
		{"[fd00:10::1]:50007/tcp", "real1", MarkBase + 1, k.Uplink().Addr6.Addr().String(), topo.Node("real1").Uplink().Addr6.Addr().String()},
		{"[fd00:10::1]:50007/tcp", "real2", MarkBase + 3, k.Uplink().Addr6.Addr().String(), topo.Node("real2").Uplink().Addr6.Addr().String()},
	}
	if len(got) != len(wantTargets) {
		t.Fatalf("targets %+v, want %+v", got, wantTargets)
	}
	for i := range got {
		if got[i] != wantTargets[i] {
			t.Errorf("target %d = %+v, want %+v", i, got[i], wantTargets[i])
		}
	}
	if tunnels := Tunnels(topo, k); len(tunnels) != 4 || tunnels[MarkBase+3].Dst != netip.MustParseAddr(wantTargets[3].dst) {
		t.Errorf("tunnels %v", tunnels)
	}

	// Without checks, nothing is checked.
	plain := loadLab(t, "dsr-dualstack.yaml", func(s string) string { return s })
	if tg := Targets(plain, plain.Node("katran")); len(tg) != 0 {
		t.Errorf("a lab without checks has targets %+v", tg)
	}
}
