package lab

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

func (d *deployment) endpoint(i *topology.Interface) netconf.Endpoint {
	return netconf.Endpoint{NS: d.ns[i.Node.Name], Name: i.Name, MAC: i.MAC}
}

// createLinks creates every veth pair that is missing, and this host's
// end of every VXLAN tunnel to another host. Both ends of a pair die
// together when either namespace goes (a container restart), so a lone end
// only exists if someone deleted its peer by hand; it is replaced.
func (d *deployment) createLinks(ctx context.Context) (string, error) {
	created := 0
	for _, l := range d.topo.Links {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if !d.here(l.A.Node) && !d.here(l.B.Node) {
			continue
		}
		if l.VXLAN != nil {
			made, err := d.vxlanEnd(l)
			if err != nil {
				return "", err
			}
			if made {
				created++
			}
			continue
		}
		present, err := d.linkPresent(l)
		if err != nil || present {
			if err != nil {
				return "", err
			}
			continue
		}
		if err := d.fault.atAction("links", created); err != nil {
			return "", err
		}
		if err := netconf.CreateVeth(d.endpoint(l.A), d.endpoint(l.B), l.MTU); err != nil {
			return "", err
		}
		created++
		d.change("links", fmt.Sprintf("created %s <-> %s (mtu %d)", l.A, l.B, l.MTU))
	}
	d.sum.Links = len(d.topo.Links)
	if created == 0 {
		return fmt.Sprintf("%d links in place", len(d.topo.Links)), nil
	}
	return fmt.Sprintf("%d links created (tx checksum offload off)", created), nil
}

// vxlanEnd creates this host's end of a link to another host: a VXLAN
// device over the host's underlay, moved into the node's namespace under
// the link's name. It reports whether it had to.
func (d *deployment) vxlanEnd(l *topology.Link) (bool, error) {
	end, far := l.A, l.B
	if !d.here(end.Node) {
		end, far = far, end
	}
	ns := d.ns[end.Node.Name]
	if ok, err := ns.LinkExists(end.Name); err != nil || ok {
		return false, err
	}
	hostNS, err := netconf.Current(d.host)
	if err != nil {
		return false, err
	}
	defer hostNS.Close()
	v := netconf.VXLAN{VNI: l.VXLAN.VNI, Local: end.Node.Host.Underlay, Remote: far.Node.Host.Underlay, Port: l.VXLAN.Port, MTU: l.MTU}
	if err := netconf.CreateVXLAN(hostNS, d.endpoint(end), v); err != nil {
		return false, err
	}
	d.change("links", fmt.Sprintf("created %s, VXLAN %d to %s on %s (mtu %d)", end, v.VNI, far, v.Remote, l.MTU))
	return true, nil
}

func (d *deployment) linkPresent(l *topology.Link) (bool, error) {
	a, err := d.ns[l.A.Node.Name].LinkExists(l.A.Name)
	if err != nil {
		return false, err
	}
	b, err := d.ns[l.B.Node.Name].LinkExists(l.B.Name)
	if err != nil {
		return false, err
	}
	if a && b {
		return true, nil
	}
	for _, end := range []struct {
		i      *topology.Interface
		exists bool
	}{{l.A, a}, {l.B, b}} {
		if end.exists {
			if err := d.ns[end.i.Node.Name].DeleteLink(end.i.Name); err != nil {
				return false, err
			}
			d.rep.Note(fmt.Sprintf("replaced lone link end %s", end.i))
		}
	}
	return false, nil
}

// address sets addresses, routes and loopback VIPs. Every call replaces
// rather than adds, so it is safe on a lab that is already configured.
func (d *deployment) address(ctx context.Context) (string, error) {
	addrs, routes := 0, 0
	for _, n := range d.topo.Nodes {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if !d.here(n) {
			continue
		}
		ns := d.ns[n.Name]
		for _, i := range n.Interfaces {
			if err := ns.ConfigureInterface(i.Name, i.Addr, i.Addr6); err != nil {
				return "", err
			}
			for _, a := range []netip.Prefix{i.Addr, i.Addr6} {
				if a.IsValid() {
					addrs++
				}
			}
		}
		for _, v := range d.loopbackVIPs(n) {
			if err := ns.AddLoopbackAddress(v); err != nil {
				return "", err
			}
		}
		for _, gw := range []netip.Addr{n.Gateway, n.Gateway6} {
			if !gw.IsValid() {
				continue
			}
			if err := ns.SetRoute(netip.Prefix{}, gw); err != nil {
				return "", err
			}
			routes++
		}
		for _, r := range n.Routes {
			if err := ns.SetRoute(r.Dst, r.Via); err != nil {
				return "", err
			}
			routes++
		}
		for _, r := range n.ECMPRoutes {
			if err := ns.SetECMPRoute(r.Dst, r.Vias, netconf.ProtoStatic); err != nil {
				return "", err
			}
			routes++
		}
	}
	return fmt.Sprintf("%d addresses, %d routes", addrs, routes), nil
}

// loopbackVIPs are the VIP addresses a real must accept as its own: DSR
// packets arrive still addressed to the VIP.
func (d *deployment) loopbackVIPs(n *topology.Node) []netip.Addr {
	var out []netip.Addr
	for _, v := range dsrVIPs(d.topo.VIPsBackedBy(n)) {
		out = append(out, v.Address)
	}
	return out
}

// dsrVIPs keeps the VIPs served by the XDP balancer; NAT VIPs need neither
// the balancer, nor decapsulation, nor the VIP on the reals.
func dsrVIPs(vips []*topology.VIP) []*topology.VIP {
	return vipsWhere(vips, func(v *topology.VIP) bool { return !v.NAT() })
}

// echoVIPs keeps the VIPs whose port the echo service answers.
func echoVIPs(vips []*topology.VIP) []*topology.VIP {
	return vipsWhere(vips, func(v *topology.VIP) bool { return v.Service == topology.ServiceEcho })
}

func vipsWhere(vips []*topology.VIP, keep func(*topology.VIP) bool) []*topology.VIP {
	var out []*topology.VIP
	for _, v := range vips {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}
