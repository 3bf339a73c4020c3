package graph

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/topology"
)

// TestLayoutOfTheReferenceLab: the request goes down the page (client,
// router, then katran and real side by side), and each direction of each
// link is named by the flows that cross it, so a page can colour the
// direct return apart from the request and the tunnel.
func TestLayoutOfTheReferenceLab(t *testing.T) {
	topo, err := topology.Load("../../labs/dsr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc := Layout(topo)
	place := map[string]string{}
	for _, n := range sc.Nodes {
		place[n.Name] = fmt.Sprintf("%d %d/%d %s", n.Row, n.Col, n.Cols, n.Fill)
	}
	want := map[string]string{"client": "0 0/1 #e3f2fd", "router": "1 0/1 #fff9c4", "katran": "2 0/2 #e8f5e9", "real": "2 1/2 #fce4ec"}
	for n, w := range want {
		if place[n] != w {
			t.Errorf("%s at %q, want %q", n, place[n], w)
		}
	}
	dirs := map[string]string{}
	for _, l := range sc.Links {
		dirs[l.A+">"+l.B] = fmt.Sprint(l.AtoB)
		dirs[l.B+">"+l.A] = fmt.Sprint(l.BtoA)
	}
	for d, w := range map[string]string{
		"client:eth0>router:eth2": "[request]", "router:eth2>client:eth0": "[reply]",
		"router:eth0>katran:eth0": "[request]", "katran:eth0>router:eth0": "[tunnel]",
		"router:eth1>real:eth0": "[tunnel]", "real:eth0>router:eth1": "[reply]",
	} {
		if dirs[d] != w {
			t.Errorf("%s carries %s, want %s", d, dirs[d], w)
		}
	}
	var steps []string
	for _, f := range sc.Flows {
		steps = append(steps, f.Title+" "+f.From+">"+f.To)
	}
	wantSteps := []string{"1. Request client:eth0>router:eth2", "2. Forward router:eth0>katran:eth0",
		"3. IPIP Encap katran:eth0>router:eth0", "4. Forward IPIP router:eth1>real:eth0",
		"5. DSR Reply real:eth0>router:eth1", "6. Return router:eth2>client:eth0"}
	if !slices.Equal(steps, wantSteps) {
		t.Errorf("flows %q, want %q", steps, wantSteps)
	}
	if len(sc.Style) != 4 || sc.Style[3].Name != "reply" || sc.Style[3].Color != styleColor[styleReply] {
		t.Errorf("styles %+v", sc.Style)
	}
}

// TestLayoutOfANATLab: the hair-pin crosses the balancer's link both ways
// with replies, which a page must show too.
func TestLayoutOfANATLab(t *testing.T) {
	topo, err := topology.Load("../../labs/nat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range Layout(topo).Links {
		if l.B == "katran:eth0" || l.A == "katran:eth0" {
			found = true
			if !slices.Contains(l.AtoB, "reply") || !slices.Contains(l.BtoA, "reply") {
				t.Errorf("NAT balancer's link %s—%s: %v / %v, want replies both ways", l.A, l.B, l.AtoB, l.BtoA)
			}
		}
	}
	if !found {
		t.Error("no link to katran:eth0")
	}
}

// TestLayoutOfATier: the router's way to a tier's VIP is each katran in
// turn (ECMP over BGP announcements), so every katran's link carries the
// request one way and the tunnel the other.
func TestLayoutOfATier(t *testing.T) {
	topo, err := topology.Load("../../labs/dsr-tier.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, l := range Layout(topo).Links {
		if strings.HasPrefix(l.B, "katran") {
			seen++
			if fmt.Sprint(l.AtoB, l.BtoA) != "[request] [tunnel]" {
				t.Errorf("%s—%s carries %v / %v, want the request in and the tunnel out", l.A, l.B, l.AtoB, l.BtoA)
			}
		}
	}
	if seen != 3 {
		t.Errorf("%d links to katrans, want 3", seen)
	}
}
