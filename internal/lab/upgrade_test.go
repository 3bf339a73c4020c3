package lab

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/dsrlab/dsrlab/bpf"
)

// A balancer loaded by another version of dsrlab (here: a program of the
// balancer's name without its maps) is named by stats, and replaced in
// place by up, without touching the containers.
func TestBalancerOfAnotherVersionIsReplaced(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	before := labNames(t, rt, topo.Name)

	old, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: bpf.BalancerName, Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}, // XDP_PASS
	})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	ns, err := NodeNamespace(context.Background(), one(rt), topo, "katran")
	if err != nil {
		t.Fatal(err)
	}
	att, err := ns.XDP("eth0")
	if err == nil {
		err = ns.AttachXDP("eth0", old.FD(), att.Mode)
	}
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}

	if _, err := Stats(context.Background(), one(rt), topo); err == nil ||
		!strings.Contains(err.Error(), "another version of dsrlab loaded it; `dsrlab up` replaces it") {
		t.Errorf("stats of another version's balancer: %v", err)
	}
	sum, _ := mustUp(t, rt, topo)
	if sum.Changes == 0 {
		t.Error("up left another version's balancer in place")
	}
	if after := labNames(t, rt, topo.Name); !slices.Equal(before, after) {
		t.Errorf("replacing the balancer touched containers: %v, then %v", before, after)
	}
	mustVerify(t, rt, topo)
	if _, err := Stats(context.Background(), one(rt), topo); err != nil {
		t.Errorf("stats after the replacement: %v", err)
	}
}
