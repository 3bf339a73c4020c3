package lab

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/dsrlab/dsrlab/internal/nat"
	"github.com/dsrlab/dsrlab/topology"
)

// natBalancers programs nftables DNAT+SNAT on every katran that serves NAT
// VIPs: the baseline that DSR is measured against, where replies hair-pin
// back through the balancer.
func (d *deployment) natBalancers(ctx context.Context) (string, error) {
	var report []string
	for _, k := range d.topo.NodesOfKind(topology.KindKatran) {
		services := natServices(k, d.topo.VIPsServedBy(k))
		if !d.here(k) || len(services) == 0 {
			continue
		}
		fd := d.ns[k.Name].FD()
		before, err := nat.Rules(fd)
		if err != nil {
			return "", fmt.Errorf("node %s: %w", k.Name, err)
		}
		// Apply replaces the tables in one transaction; established flows
		// keep their translation in conntrack.
		if err := nat.Apply(fd, services); err != nil {
			return "", fmt.Errorf("node %s: %w", k.Name, err)
		}
		after, err := nat.Rules(fd)
		if err != nil {
			return "", fmt.Errorf("node %s: %w", k.Name, err)
		}
		if !reflect.DeepEqual(before, after) {
			d.change("nat", fmt.Sprintf("%s: nftables tables %s with %d services", k.Name, nat.TableName, len(services)))
		}
		d.sum.NAT[k.Name] = fmt.Sprintf("nftables DNAT+SNAT, %d VIPs", len(services))
		report = append(report, fmt.Sprintf("%s: %d NAT VIPs", k.Name, len(services)))
	}
	if len(report) == 0 {
		return "no NAT VIPs", nil
	}
	return strings.Join(report, "; "), nil
}

// natServices are the NAT rules of balancer lb, which translates the
// sources of its VIPs' connections to its own uplink address.
func natServices(lb *topology.Node, vips []*topology.VIP) []nat.Service {
	var out []nat.Service
	for _, v := range vips {
		if !v.NAT() {
			continue
		}
		s := nat.Service{VIP: v.Address, Port: v.Port, Proto: string(v.Proto), SNAT: lb.Uplink().AddrOf(v.Is6()).Addr()}
		for _, r := range v.Reals {
			addr, _ := v.Tunnel(r.Node) // of the VIP's family: validated
			s.Backends = append(s.Backends, nat.Backend{Addr: addr, Weight: r.Weight})
		}
		out = append(out, s)
	}
	return out
}
