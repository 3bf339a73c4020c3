package lab

import (
	"context"
	"errors"
	"fmt"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

// ipipDevice is the metadata-collecting tunnel device created on reals
// whose kernel has IPIP.
const ipipDevice = "ipip0"

// decap makes every real accept IPIP: the kernel's tunnel device where the
// kernel has one, otherwise an XDP program that strips the outer header.
// One real after another: attaching a program not attached anywhere yet
// takes the kernel 10-19 ms here, and such attaches wait for each other
// (docs/BENCHMARKS.md), so parallel workers gained nothing.
func (d *deployment) decap(ctx context.Context) (string, error) {
	for _, r := range d.topo.NodesOfKind(topology.KindReal) {
		if !d.here(r) || len(dsrVIPs(d.topo.VIPsBackedBy(r))) == 0 && r.Program == nil {
			continue
		}
		mode, err := d.decapReal(r)
		if err != nil {
			return "", fmt.Errorf("node %s: %w", r.Name, err)
		}
		d.sum.Decap[r.Name] = mode
	}
	if len(d.sum.Decap) == 0 {
		return "no reals", nil
	}
	return Grouped(d.sum.Decap), nil
}

func (d *deployment) decapReal(r *topology.Node) (string, error) {
	if r.Program != nil {
		return d.userDecap(r)
	}
	ns := d.ns[r.Name]
	up := r.Uplink()
	if ok, err := ns.LinkExists(ipipDevice); err != nil {
		return "", err
	} else if ok {
		return ipipDecap, nil
	}
	if err := d.clearStub(up); err != nil {
		return "", err
	}
	prog, att, err := attached(ns, up.Name, bpf.DecapName)
	if err != nil {
		return "", err
	}
	if prog != nil {
		prog.Close()
		return xdpDecap(att.Mode, up.Name), nil
	}
	why := ""
	if r.Decap != topology.DecapXDP {
		err := ns.AddIPIPDevice(ipipDevice)
		if err == nil {
			d.change("decap", "created "+ipipDevice+" on "+r.Name)
			return ipipDecap, nil
		}
		if r.Decap == topology.DecapIPIP || !errors.Is(err, netconf.ErrNotSupported) {
			return "", err
		}
		why = "; kernel has no ipip"
	}
	dc, err := d.newDecap(r)
	if err != nil {
		return "", err
	}
	defer dc.Close()
	mode, err := d.attach(up, dc.Program().FD(), topology.XDPAuto, false)
	if err != nil {
		return "", err
	}
	d.change("decap", fmt.Sprintf("attached %s to %s in %s mode", bpf.DecapName, up, mode))
	return xdpDecap(mode, up.Name) + why, nil
}

// How a real decapsulates, as summaries and inspect describe it.
const ipipDecap = "ipip (kernel device " + ipipDevice + ")"

func xdpDecap(mode netconf.XDPMode, ifname string) string {
	return fmt.Sprintf("xdp (%s on %s)", mode, ifname)
}

// userDecap puts a real's own program in the place of the built-in XDP
// decap. The kernel's ipip device, where the kernel has one, is still
// created: the user's program may leave decapsulation to it.
func (d *deployment) userDecap(r *topology.Node) (string, error) {
	ns := d.ns[r.Name]
	how := "no ipip device"
	if r.Decap != topology.DecapXDP {
		exists, err := ns.LinkExists(ipipDevice)
		if err != nil {
			return "", err
		}
		if !exists {
			err = ns.AddIPIPDevice(ipipDevice)
		}
		switch {
		case err == nil:
			how = ipipDecap
			if !exists {
				d.change("decap", "created "+ipipDevice+" on "+r.Name)
			}
		case r.Decap == topology.DecapIPIP || !errors.Is(err, netconf.ErrNotSupported):
			return "", err
		}
	}
	mode, err := d.attachProgram(r)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (%s on %s, %s)", d.programs[r.Name].obj.Program.Name, mode, r.Program.Interface.Name, how), nil
}
