package trace

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/dsrlab/dsrlab/topology"
)

// Select picks the flow to trace from the command line: target is
// "VIP", "VIP:PORT" or "" (the lab's first VIP), from is a node name or
// "" (the lab's first client), proto "tcp", "udp" or "" (any).
func Select(t *topology.Topology, target, from, proto string) (Options, error) {
	var opt Options
	if proto != "" && proto != string(topology.ProtoTCP) && proto != string(topology.ProtoUDP) {
		return opt, fmt.Errorf("--proto %q: want tcp or udp", proto)
	}
	var addr netip.Addr
	var port uint16
	if target != "" {
		if ap, err := netip.ParseAddrPort(target); err == nil {
			addr, port = ap.Addr(), ap.Port()
		} else if a, err := netip.ParseAddr(strings.Trim(target, "[]")); err == nil {
			addr = a
		} else {
			return opt, fmt.Errorf("%q: want VIP or VIP:PORT (192.168.10.1:50007, [2001:db8::1]:80)", target)
		}
	}
	for _, v := range t.VIPs {
		switch {
		case addr.IsValid() && v.Address != addr.Unmap(),
			port != 0 && v.Port != topology.AnyPort && v.Port != port,
			proto != "" && string(v.Proto) != proto:
			continue
		}
		opt.VIP = v
		if port != 0 {
			opt.Port = port
		}
		break
	}
	if opt.VIP == nil {
		var vips []string
		for _, v := range t.VIPs {
			vips = append(vips, v.String())
		}
		want := strings.TrimSpace(target + " " + proto)
		if want == "" {
			return opt, fmt.Errorf("lab %q has no VIP to trace", t.Name)
		}
		return opt, fmt.Errorf("lab %q has no VIP %s (it has: %s)", t.Name, want, strings.Join(vips, ", "))
	}
	if opt.VIP.Port == topology.AnyPort && opt.Port == 0 {
		addr := opt.VIP.Address.String()
		if opt.VIP.Is6() {
			addr = "[" + addr + "]"
		}
		return opt, fmt.Errorf("VIP %s serves every port: name one, as %s:PORT", opt.VIP, addr)
	}
	if from == "" {
		clients := t.NodesOfKind(topology.KindClient)
		if len(clients) == 0 {
			return opt, fmt.Errorf("lab %q has no client node: name the node to probe from with --from", t.Name)
		}
		opt.Client = clients[0]
		return opt, nil
	}
	if opt.Client = t.Node(from); opt.Client == nil {
		return opt, fmt.Errorf("lab %q has no node %q", t.Name, from)
	}
	return opt, nil
}
