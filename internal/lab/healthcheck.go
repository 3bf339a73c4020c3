package lab

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

// healthChecks puts tc_healthcheck on the TC egress of the uplink of every
// katran here that checks reals, with one mark per real
// (health.Mark), or brings the attached one's marks up to date. A katran
// that checks nothing gets no program; one that no longer does keeps its
// program with no marks, which passes every packet.
func (d *deployment) healthChecks(context.Context) (string, error) {
	var report []string
	for _, k := range d.topo.NodesOfKind(topology.KindKatran) {
		if !d.here(k) || k.Program != nil || k.Uplink() == nil {
			continue
		}
		what, err := d.healthCheck(k)
		if err != nil {
			return "", fmt.Errorf("node %s: %w", k.Name, err)
		}
		if what != "" {
			report = append(report, k.Name+" "+what)
		}
	}
	if len(report) == 0 {
		return "no checks", nil
	}
	return strings.Join(report, "; "), nil
}

func (d *deployment) healthCheck(k *topology.Node) (string, error) {
	up, ns := k.Uplink(), d.ns[k.Name]
	tunnels := healthCheckTunnels(d.topo, k)
	id, err := healthCheckProgram(ns, up.Name)
	if err != nil {
		return "", err
	}
	if id == 0 && len(tunnels) == 0 {
		return "", nil
	}
	if id != 0 {
		hc, err := openHealthCheck(id, up)
		if err != nil && !errors.Is(err, bpf.ErrOtherBuild) {
			return "", err
		}
		if hc != nil {
			defer hc.Close()
			changed, err := hc.SetTunnels(tunnels)
			if err != nil {
				return "", err
			}
			if changed > 0 {
				d.change("healthcheck", fmt.Sprintf("%s: %d check marks updated", up, changed))
			}
			return fmt.Sprintf("%d marks (attached; %d updated in place)", len(tunnels), changed), nil
		}
	}
	hc, err := bpf.LoadHealthCheck()
	if err != nil {
		return "", err
	}
	defer hc.Close()
	// Marks first: the program never sees a check it cannot carry.
	if _, err := hc.SetTunnels(tunnels); err != nil {
		return "", err
	}
	if err := ns.AttachTC(up.Name, true, healthCheckPriority, hc.Program().FD(), bpf.HealthCheckName); err != nil {
		return "", err
	}
	d.change("healthcheck", fmt.Sprintf("attached %s to TC egress of %s, %d marks", bpf.HealthCheckName, up, len(tunnels)))
	return fmt.Sprintf("%d marks (loaded)", len(tunnels)), nil
}

// healthCheckTunnels is the mark map of katran k's tc_healthcheck.
func healthCheckTunnels(t *topology.Topology, k *topology.Node) map[uint32]bpf.Tunnel {
	tunnels := map[uint32]bpf.Tunnel{}
	for mark, tn := range health.Tunnels(t, k) {
		tunnels[mark] = bpf.Tunnel{Src: tn.Src, Dst: tn.Dst}
	}
	return tunnels
}

// healthCheckPriority is the place of dsrlab's health-check encapsulation
// on a katran's TC egress hook: after every program of the user's, whose
// priorities stop below it.
const healthCheckPriority = topology.MaxTCPriority + 1

// healthCheckProgram is the ID of the program at dsrlab's place on the
// interface's egress hook; 0 when there is none.
func healthCheckProgram(ns *netconf.Namespace, ifname string) (uint32, error) {
	tcs, err := ns.TC(ifname)
	if err != nil {
		return 0, err
	}
	for _, a := range tcs {
		if a.Egress && a.Priority == healthCheckPriority {
			return a.ProgID, nil
		}
	}
	return 0, nil
}

// openHealthCheck opens the program in dsrlab's egress filter of up,
// which must be tc_healthcheck: dsrlab replaces none but its own.
func openHealthCheck(id uint32, up *topology.Interface) (*bpf.HealthCheck, error) {
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return nil, fmt.Errorf("%s: TC egress program %d: %w", up, id, err)
	}
	defer prog.Close()
	return bpf.OpenHealthCheck(prog)
}
