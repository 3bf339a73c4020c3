package netconf

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// tcProgram loads a cls_bpf program returning verdict.
func tcProgram(t *testing.T, verdict int32) *ebpf.Program {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, verdict), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
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

// TC programs go on a hook at a priority, are replaced there in place,
// listed from the kernel, and removed.
func TestTCAttachReplaceDetach(t *testing.T) {
	a, _ := vethPair(t, 1500)
	ok, shot := tcProgram(t, 0), tcProgram(t, 2)
	if err := a.AttachTC("eth0", false, 1, ok.FD(), "tc_ok"); err != nil {
		t.Fatal(err)
	}
	if err := a.AttachTC("eth0", true, 5, shot.FD(), "tc_shot"); err != nil {
		t.Fatal(err)
	}
	got, err := a.TC("eth0")
	if err != nil {
		t.Fatal(err)
	}
	want := []TCAttachment{{Egress: false, Priority: 1, ProgID: progID(t, ok), Name: "tc_ok"}, {Egress: true, Priority: 5, ProgID: progID(t, shot), Name: "tc_shot"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("TC = %+v, want %+v", got, want)
	}
	// Replaced at the same priority: still one filter there.
	if err := a.AttachTC("eth0", false, 1, shot.FD(), "tc_shot"); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.TC("eth0"); len(got) != 2 || got[0].ProgID != progID(t, shot) {
		t.Fatalf("after the replace: %+v", got)
	}
	for range 2 {
		if err := a.DetachTC("eth0", false, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := a.TC("eth0"); len(got) != 1 || !got[0].Egress {
		t.Fatalf("after the detach: %+v", got)
	}
	if err := a.DetachTC("nope0", true, 5); err != nil {
		t.Errorf("detach from an interface that is gone: %v", err)
	}
	if got, err := a.TC("nope0"); err != nil || len(got) != 0 {
		t.Errorf("the hooks of an interface that is gone: %+v, %v", got, err)
	}
}
