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

// createLinks creates every veth pair that is missing. Both ends of a pair
// die together when either namespace goes (a container restart), so a lone
// end only exists if someone deleted its peer by hand; it is replaced.
func (d *deployment) createLinks(ctx context.Context) (string, error) {
	created := 0
	for _, l := range d.topo.Links {
		if err := ctx.Err(); err != nil {
			return "", err
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
		return fmt.Sprintf("%d veth pairs in place", len(d.topo.Links)), nil
	}
	return fmt.Sprintf("%d veth pairs created (tx checksum offload off)", created), nil
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
