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
	PassName     = "xdp_pass"
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
	if !NameIs(info.Name, want) {
		prog.Close()
		return nil, fmt.Errorf("%s has XDP program %d (%q) attached, not %s", where, id, info.Name, want)
	}
	return prog, nil
}

// BuiltinSpec returns the collection a program of dsrlab's was loaded
// from, by the name the kernel reports, so its maps can be read by BTF
// like a user's; false for a program that is not dsrlab's.
func BuiltinSpec(name string) (*ebpf.CollectionSpec, bool, error) {
	var load func() (*ebpf.CollectionSpec, error)
	switch name {
	case BalancerName:
		load = loadBalancer
	case DecapName:
		load = loadDecap
	case PassName:
		load = loadPass
	case HealthCheckName:
		load = loadHealthcheck
	default:
		return nil, false, nil
	}
	spec, err := load()
	return spec, true, err
}

// NameIs tells whether a program the kernel reports as reported is the one
// called name. The kernel keeps 15 characters of a name (BPF_OBJ_NAME_LEN);
// cilium/ebpf gives the whole name back from BTF where it can.
func NameIs(reported, name string) bool {
	const kept = 15
	return reported == name || (len(reported) == kept && len(name) > kept && name[:kept] == reported)
}
