//go:build linux

package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// The names of dsrlab's own programs as the kernel reports them. They tell
// dsrlab's programs from anything else attached to an interface.
const (
	BalancerName = "xdp_balancer"
	DecapName    = "xdp_decap"
)

// OpenAttached opens the program with the given ID, as an interface's XDP
// attachment reports it, and checks that it is the one called want: dsrlab
// never takes over or replaces a program it did not put there. The caller
// closes the program.
func OpenAttached(id uint32, where, want string) (*ebpf.Program, error) {
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return nil, fmt.Errorf("%s: XDP program %d: %w", where, id, err)
	}
	info, err := prog.Info()
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("%s: XDP program %d: %w", where, id, err)
	}
	if info.Name != want {
		prog.Close()
		return nil, fmt.Errorf("%s has XDP program %d (%q) attached, not %s", where, id, info.Name, want)
	}
	return prog, nil
}
