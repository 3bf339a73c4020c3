//go:build linux

package bpf

import "github.com/cilium/ebpf"

// LoadPass loads xdp_pass, which hands every frame to the kernel. Attach it
// to the veth peer of an interface that does native XDP_TX: a veth drops
// XDP frames sent to a peer that runs no XDP program.
func LoadPass() (*ebpf.Program, error) {
	spec, err := loadPass()
	if err != nil {
		return nil, err
	}
	var objs passObjects
	if err := loadObjects("pass", spec, &objs); err != nil {
		return nil, err
	}
	return objs.XdpPass, nil
}
