package netconf

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// passCLS loads a TC program that lets every packet through.
func passCLS(t *testing.T, name string) *ebpf.Program {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.SchedCLS,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		t.Skipf("cannot load a TC program here: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

func progID(t *testing.T, p *ebpf.Program) uint32 {
	t.Helper()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return uint32(id)
}

func TestTCEgressAttachReplaceRead(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and BPF")
	}
	a, _ := vethPair(t, 1500)
	if id, err := a.TCEgress("eth0"); err != nil || id != 0 {
		t.Fatalf("TCEgress before attaching = %d, %v; want 0, nil", id, err)
	}
	first, second := passCLS(t, "tc_first"), passCLS(t, "tc_second")
	for _, p := range []*ebpf.Program{first, second, second} {
		if err := a.AttachTCEgress("eth0", p.FD(), "test"); err != nil {
			t.Fatal(err)
		}
		id, err := a.TCEgress("eth0")
		if err != nil || id != progID(t, p) {
			t.Errorf("TCEgress = %d, %v; want %d, the program just attached", id, err, progID(t, p))
		}
	}
	link, err := a.h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	filters, err := a.h.FilterList(link, egressFilter.Parent)
	if err != nil || len(filters) != 1 {
		t.Errorf("egress filters after three attachments: %v, %v; want exactly one", filters, err)
	}
}
