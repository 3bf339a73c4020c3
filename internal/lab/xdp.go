package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

// loadBalancers puts the XDP balancer on every katran that serves VIPs, or
// brings the one already attached up to date through its maps, without
// reloading it: established flows keep their reals.
func (d *deployment) loadBalancers(ctx context.Context) (string, error) {
	// Read now, under the lab's lock (which keeps the controller from
	// writing weights), not when up started: a real the controller found
	// down meanwhile does not get its flows back.
	var err error
	if d.health, err = health.ReadState(labDir(d.topo.Name)); err != nil {
		return "", err
	}
	var report []string
	// Users' programs other than the reals' (which the decap step
	// attached): a katran's takes the place of the balancer.
	for _, n := range d.topo.Nodes {
		if !d.here(n) || n.Program == nil || n.Kind == topology.KindReal {
			continue
		}
		mode, err := d.attachProgram(n)
		if err != nil {
			return "", fmt.Errorf("node %s: %w", n.Name, err)
		}
		d.sum.XDP[n.Name] = fmt.Sprintf("%s (%s)", mode, d.programs[n.Name].obj.Program.Name)
		report = append(report, fmt.Sprintf("%s:%s %s, %s", n.Name, n.Program.Interface.Name, mode, d.programs[n.Name].obj.Program.Name))
	}
	for _, k := range d.topo.NodesOfKind(topology.KindKatran) {
		vips := dsrVIPs(d.topo.VIPsServedBy(k))
		if !d.here(k) || len(vips) == 0 || k.Program != nil {
			continue
		}
		mode, what, err := d.balancer(k, vips)
		if err != nil {
			return "", fmt.Errorf("node %s: %w", k.Name, err)
		}
		d.sum.XDP[k.Name] = mode.String()
		report = append(report, fmt.Sprintf("%s:%s %s, %d VIPs %s", k.Name, k.Uplink().Name, mode, len(vips), what))
	}
	for _, v := range d.topo.VIPs {
		d.sum.VIPs = append(d.sum.VIPs, v.String())
	}
	if len(report) == 0 {
		return "no VIPs", nil
	}
	return strings.Join(report, "; "), nil
}

func (d *deployment) balancer(k *topology.Node, vips []*topology.VIP) (netconf.XDPMode, string, error) {
	up := k.Uplink()
	ns := d.ns[k.Name]
	if err := d.clearStub(up); err != nil {
		return 0, "", err
	}
	running, att, err := openBalancer(ns, up.Name)
	otherBuild := errors.Is(err, bpf.ErrOtherBuild)
	if err != nil && !otherBuild {
		return 0, "", err
	}
	if running != nil {
		defer running.Close()
		changed, err := d.programVIPs(running, up, vips)
		if err != nil {
			return 0, "", err
		}
		if att.Mode == netconf.XDPNative {
			if _, err := d.ensurePeerStub(up.Peer); err != nil {
				return 0, "", err
			}
		}
		return att.Mode, fmt.Sprintf("(attached; %d VIPs updated in place)", changed), nil
	}
	lb, err := d.newBalancer(k)
	if err != nil {
		return 0, "", err
	}
	// Closing our handles is safe once attached: the interface holds the
	// program, and the program holds its maps.
	defer lb.Close()
	// The maps are filled before the program is attached, so it never sees
	// a packet half-configured.
	if _, err := d.programVIPs(lb, up, vips); err != nil {
		return 0, "", err
	}
	if otherBuild {
		// One netlink request swaps the programs: the interface is never
		// without one. The connection table starts empty: established
		// flows are balanced afresh.
		if att.Mode == netconf.XDPNative {
			if _, err := d.ensurePeerStub(up.Peer); err != nil {
				return 0, "", err
			}
		}
		if err := ns.AttachXDP(up.Name, lb.Program().FD(), att.Mode); err != nil {
			return 0, "", err
		}
		d.change("xdp", fmt.Sprintf("replaced %s on %s, loaded by another version of dsrlab", bpf.BalancerName, up))
		return att.Mode, "(replaced: loaded by another version of dsrlab)", nil
	}
	mode, err := d.attach(up, lb.Program().FD(), k.XDP, true)
	if err == nil {
		d.change("xdp", fmt.Sprintf("attached %s to %s in %s mode", bpf.BalancerName, up, mode))
	}
	return mode, "(loaded)", err
}

// programVIPs makes the balancer's maps hold exactly the topology's VIPs.
// It reports how many it had to change.
func (d *deployment) programVIPs(lb *bpf.Balancer, up *topology.Interface, vips []*topology.VIP) (int, error) {
	// One outer source per family: reals are reached over the family
	// they have (IPIP, 4in6, IPv6-in-IPv6).
	for _, src := range []netip.Prefix{up.Addr, up.Addr6} {
		if !src.IsValid() {
			continue
		}
		if err := lb.Configure(src.Addr(), up.Peer.MAC, up.MTU); err != nil {
			return 0, err
		}
	}
	current, err := lb.VIPs()
	if err != nil {
		return 0, err
	}
	// A VIP is the same VIP whatever its hash mode: a changed mode is
	// set in place, not a VIP removed and another added.
	have := map[bpf.VIP]bpf.VIP{}
	for v := range current {
		have[identity(v)] = v
	}
	changed := 0
	want := map[bpf.VIP]bool{}
	for _, v := range vips {
		key := bpfVIP(v)
		want[identity(key)] = true
		reals, _ := vipReals(up, v, d.health)
		if old, ok := have[identity(key)]; ok && old.Hash == key.Hash && sameReals(current[old], reals) {
			continue
		}
		if err := lb.SetVIP(key, reals); err != nil {
			return 0, fmt.Errorf("VIP %s: %w", v, err)
		}
		changed++
		d.change("xdp", fmt.Sprintf("VIP %s: reals %v", key, reals))
	}
	for v := range current {
		if !want[identity(v)] {
			if err := lb.DeleteVIP(v); err != nil {
				return 0, err
			}
			changed++
			d.change("xdp", fmt.Sprintf("VIP %s removed", v))
		}
	}
	return changed, nil
}

// vipReals are the reals of v as the balancer behind up holds them: the
// recorded weights, with the reals that the controller found down on that
// balancer at 0 (unless all are: fail open, which it reports).
func vipReals(up *topology.Interface, v *topology.VIP, st health.State) ([]bpf.Real, bool) {
	ws := make([]health.Weighted, len(v.Reals))
	for i, r := range v.Reals {
		ws[i] = health.Weighted{Real: r.Node.Name, Weight: r.Weight, Status: health.Unchecked}
		if h, ok := st.Of(health.Key{VIP: v.String(), Katran: up.Node.Name, Real: r.Node.Name}); ok && v.HealthCheck != nil {
			ws[i].Status = h.Status
		}
	}
	weights, failOpen := health.Effective(ws)
	reals := make([]bpf.Real, len(v.Reals))
	for i, r := range v.Reals {
		addr, _ := v.Tunnel(r.Node) // validation made sure there is one
		reals[i] = bpf.Real{Addr: addr, Weight: weights[i], MTU: topology.PathMTU(up, r.Node)}
	}
	return reals, failOpen
}

// identity is what tells one VIP from another in the balancer's maps.
func identity(v bpf.VIP) bpf.VIP { return bpf.VIP{Addr: v.Addr, Port: v.Port, Proto: v.Proto} }

func sameReals(a, b []bpf.Real) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(rs []bpf.Real) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprint(r)
		}
		sort.Strings(out)
		return out
	}
	ka, kb := key(a), key(b)
	for i := range ka {
		if ka[i] != kb[i] {
			return false
		}
	}
	return true
}

func bpfVIP(v *topology.VIP) bpf.VIP {
	proto := bpf.ProtoTCP
	if v.Proto == topology.ProtoUDP {
		proto = bpf.ProtoUDP
	}
	// The topology's names for hash modes are the balancer's.
	hash, _ := bpf.ParseHashMode(string(v.Hash))
	return bpf.VIP{Addr: v.Address, Port: v.Port, Proto: proto, Hash: hash}
}

// openBalancer opens the maps of the balancer attached to an interface,
// through the program itself (no pins); nil if nothing is attached.
func openBalancer(ns *netconf.Namespace, ifname string) (*bpf.Balancer, netconf.XDPAttachment, error) {
	prog, att, err := attached(ns, ifname, bpf.BalancerName)
	if err != nil || prog == nil {
		return nil, att, err
	}
	defer prog.Close() // the Balancer holds its own reference
	lb, err := bpf.OpenBalancer(prog)
	if errors.Is(err, bpf.ErrOtherBuild) {
		err = fmt.Errorf("the balancer on %s: %w; `dsrlab up` replaces it", ifname, err)
	}
	return lb, att, err
}

// attached returns the program attached to an interface if it is ours
// (named want), nil if nothing is attached, and an error if something else
// is: dsrlab does not replace programs it did not put there.
func attached(ns *netconf.Namespace, ifname, want string) (*ebpf.Program, netconf.XDPAttachment, error) {
	att, err := ns.XDP(ifname)
	if err != nil || att.ProgID == 0 {
		return nil, att, err
	}
	prog, err := bpf.OpenAttached(att.ProgID, ifname, want)
	return prog, att, err
}

// attach puts a program on an interface in the wanted mode; auto tries
// native first and falls back to generic. A program that transmits
// (XDP_TX) in native mode on a veth needs an XDP program on the peer as
// well, or the peer drops every frame it is sent.
func (d *deployment) attach(i *topology.Interface, fd int, want topology.XDPMode, transmits bool) (netconf.XDPMode, error) {
	ns := d.ns[i.Node.Name]
	tryNative := func() error {
		stubbed := false
		if transmits {
			var err error
			if stubbed, err = d.ensurePeerStub(i.Peer); err != nil {
				return err
			}
		}
		if err := ns.AttachXDP(i.Name, fd, netconf.XDPNative); err != nil {
			if stubbed { // only what this call attached is taken back
				_ = d.ns[i.Peer.Node.Name].DetachXDP(i.Peer.Name, netconf.XDPNative)
			}
			return err
		}
		return nil
	}
	switch want {
	case topology.XDPNative:
		return netconf.XDPNative, tryNative()
	case topology.XDPGeneric:
		return netconf.XDPGeneric, ns.AttachXDP(i.Name, fd, netconf.XDPGeneric)
	}
	err := tryNative()
	if err == nil {
		return netconf.XDPNative, nil
	}
	d.note(fmt.Sprintf("native XDP on %s unavailable (%v); using generic", i, err))
	return netconf.XDPGeneric, ns.AttachXDP(i.Name, fd, netconf.XDPGeneric)
}

// ensurePeerStub makes sure the peer runs some native-mode XDP program
// (any will do: what matters is that the veth can take XDP frames), and
// reports whether it attached the stub itself.
func (d *deployment) ensurePeerStub(peer *topology.Interface) (bool, error) {
	if !d.here(peer.Node) {
		// The far end of a VXLAN tunnel: its frames go through the
		// underlay, not straight into a peer's XDP program.
		return false, nil
	}
	ns := d.ns[peer.Node.Name]
	att, err := ns.XDP(peer.Name)
	switch {
	case err != nil:
		return false, err
	case att.Mode == netconf.XDPNative:
		return false, nil
	case att.ProgID != 0:
		return false, fmt.Errorf("%s has a %s-mode XDP program (%d); native XDP_TX into it needs a native one", peer, att.Mode, att.ProgID)
	}
	stub, err := bpf.LoadPass()
	if err != nil {
		return false, err
	}
	defer stub.Close()
	if err := ns.AttachXDP(peer.Name, stub.FD(), netconf.XDPNative); err != nil {
		return false, err
	}
	d.change("xdp", "attached XDP_PASS stub to "+peer.String())
	return true, nil
}

// dropStub takes the XDP_PASS stub off an interface (att is what is
// attached there) and reports what is attached then: the stub was put there
// because the peer's native XDP_TX needs some program on this end, and the
// program that goes there now serves as well.
func (d *deployment) dropStub(i *topology.Interface, att netconf.XDPAttachment) (netconf.XDPAttachment, error) {
	if att.ProgID == 0 {
		return att, nil
	}
	stub, err := bpf.OpenAttached(att.ProgID, i.String(), bpf.PassName)
	if err != nil {
		return att, nil // not the stub: the caller decides
	}
	stub.Close()
	if err := d.ns[i.Node.Name].DetachXDP(i.Name, att.Mode); err != nil {
		return att, err
	}
	d.change("xdp", "took the XDP_PASS stub off "+i.String())
	return netconf.XDPAttachment{}, nil
}

// clearStub is dropStub for an interface whose attachment is not read yet.
func (d *deployment) clearStub(i *topology.Interface) error {
	att, err := d.ns[i.Node.Name].XDP(i.Name)
	if err == nil {
		_, err = d.dropStub(i, att)
	}
	return err
}
