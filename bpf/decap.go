//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// Decap is the loaded xdp_decap program and its maps.
type Decap struct {
	objs decapObjects
}

// LoadDecap loads xdp_decap, which strips the outer header of the
// balancer's packets addressed to one of dsts, the real's own addresses of
// either family: IPIP to an IPv4 address, ip6ip6 and 4in6 to an IPv6 one.
// It is for reals whose kernel has no ipip (or ip6tnl) device.
func LoadDecap(dsts []netip.Addr) (*Decap, error) {
	if len(dsts) == 0 {
		return nil, errors.New("load decap: no destination addresses")
	}
	for _, dst := range dsts {
		if err := validateHost("decap destination", dst); err != nil {
			return nil, fmt.Errorf("load decap: %w", err)
		}
	}

	spec, err := loadDecap()
	if err != nil {
		return nil, err
	}
	d := &Decap{}
	if err := loadObjects("decap", spec, &d.objs); err != nil {
		return nil, err
	}
	if limit := d.objs.DecapDsts.MaxEntries(); uint32(len(dsts)) > limit {
		d.Close()
		return nil, fmt.Errorf("load decap: %d destinations, at most %d", len(dsts), limit)
	}
	for _, dst := range dsts {
		// Presence is what the program checks; the value is unused.
		if err := d.objs.DecapDsts.Put(addrWords(dst), uint8(0)); err != nil {
			d.Close()
			return nil, fmt.Errorf("load decap: add %s: %w", dst, err)
		}
	}
	return d, nil
}

// Program returns xdp_decap, for attaching to the real's interface.
func (d *Decap) Program() *ebpf.Program {
	return d.objs.XdpDecap
}

// Stats reads the decapsulation counters.
func (d *Decap) Stats() (DecapStats, error) {
	n, err := sumPerCPU(d.objs.DecapStats, decapDecapStatDECAP_STAT_DECAPSULATED)
	if err != nil {
		return DecapStats{}, fmt.Errorf("read decap stats: %w", err)
	}
	return DecapStats{Decapsulated: n}, nil
}

// Close releases the program and maps. An attached program stays attached.
func (d *Decap) Close() error {
	return d.objs.Close()
}
