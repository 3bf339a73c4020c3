package trace

import (
	"fmt"
	"net/netip"
	"slices"
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
			if port == 0 {
				// 0 is how a VIP says "every port", never a port a probe can use.
				return opt, fmt.Errorf("%q: port 0 is no port to probe; name one (1..65535), or give the VIP alone for its own port", target)
			}
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
		if other := otherProto(t, addr, port, proto); other != nil {
			return opt, fmt.Errorf("VIP %s is %s, not %s: lab %q has no %s VIP at %s (it has: %s)",
				other, strings.ToUpper(string(other.Proto)), strings.ToUpper(proto), t.Name, strings.ToUpper(proto), target, strings.Join(vips, ", "))
		}
		if target == "" {
			return opt, fmt.Errorf("lab %q has no %s VIP (it has: %s)", t.Name, strings.ToUpper(proto), strings.Join(vips, ", "))
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
	return opt, cannotProbe(opt.VIP, opt.Client)
}

// otherProto is the VIP that the address (and port) of a trace's target
// name, but of another protocol than the one asked for; nil if none.
func otherProto(t *topology.Topology, addr netip.Addr, port uint16, proto string) *topology.VIP {
	if proto == "" || !addr.IsValid() {
		return nil
	}
	for _, v := range t.VIPs {
		if v.Address == addr.Unmap() && (port == 0 || v.Port == topology.AnyPort || v.Port == port) {
			return v
		}
	}
	return nil
}

// cannotProbe refuses an origin whose probe could not cross the path the
// trace judges: it would "pass" without testing anything.
func cannotProbe(v *topology.VIP, from *topology.Node) error {
	switch {
	case v.ServedBy(from):
		return fmt.Errorf("--from %s: %s is the balancer of VIP %s, so the answer to its own probe comes back to it whatever the path; probe from a client or a router",
			from.Name, from.Name, v)
	case !v.NAT() && slices.ContainsFunc(v.Reals, func(r topology.Real) bool { return r.Node == from }):
		return fmt.Errorf("--from %s: %s is a real of VIP %s and holds the VIP on its lo, so it answers its own probe without a packet leaving it; probe from a client or a router",
			from.Name, from.Name, v)
	}
	return nil
}
