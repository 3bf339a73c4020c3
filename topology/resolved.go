package topology

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Resolved renders t as a topology file with every default and derived value
// written out (images, gateways, routes, sysctls, MTUs, modes), for
// `dsrlab validate --resolved`. Parsing the output gives the same topology.
// Container names and MACs have no field in the file format, so they are
// shown as comments.
func (t *Topology) Resolved() ([]byte, error) {
	var tree yaml.Node
	if err := tree.Encode(t.raw()); err != nil {
		return nil, err
	}
	t.annotate(document{root: &tree})
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&tree); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// raw converts t back to the file format.
func (t *Topology) raw() *rawTopology {
	raw := &rawTopology{
		Name:     t.Name,
		Prefix:   t.Prefix,
		Defaults: rawDefaults{Image: t.Defaults.Image},
		Nodes:    map[string]*rawNode{},
	}
	for _, h := range t.Hosts {
		rh := &rawHost{Docker: h.Docker}
		if h.Underlay.IsValid() {
			rh.Underlay = h.Underlay.String()
		}
		if h.TLS != nil {
			rh.TLS = &rawTLS{CA: h.TLS.CA, Cert: h.TLS.Cert, Key: h.TLS.Key}
		}
		if h.MTU != DefaultUnderlayMTU {
			mtu := integer(h.MTU)
			rh.MTU = &mtu
		}
		if *rh == (rawHost{}) && h.Local() {
			continue // the implicit local host
		}
		if raw.Hosts == nil {
			raw.Hosts = map[string]*rawHost{}
		}
		raw.Hosts[h.Name] = rh
	}
	if t.VXLANPort != DefaultVXLANPort {
		port := integer(t.VXLANPort)
		raw.VXLAN = &rawVXLAN{Port: &port}
	}
	for _, n := range t.Nodes {
		rn := &rawNode{
			Kind:    string(n.Kind),
			Image:   n.Image,
			Cmd:     n.Cmd,
			Env:     n.Env,
			Exec:    n.Exec,
			Sysctls: n.Sysctls,
			XDP:     string(n.XDP),
			Decap:   string(n.Decap),
			Routing: string(n.Routing),
		}
		if n.BGP != nil {
			rn.BGP = n.BGP.raw()
		}
		if !n.Host.Local() {
			rn.Host = n.Host.Name
		}
		if n.Gateway.IsValid() {
			rn.Gateway = n.Gateway.String()
		}
		if n.Gateway6.IsValid() {
			rn.Gateway6 = n.Gateway6.String()
		}
		if pr := n.Program; pr != nil {
			rn.Program = pr.raw()
		}
		for _, pr := range n.TC {
			rn.Programs = append(rn.Programs, *pr.raw())
		}
		for _, r := range n.Routes {
			rn.Routes = append(rn.Routes, rawRoute{Dst: r.Dst.String(), Via: r.Via.String()})
		}
		raw.Nodes[n.Name] = rn
	}
	for _, l := range t.Links {
		mtu := integer(l.MTU)
		rl := rawLink{Endpoints: []string{l.A.String(), l.B.String()}, MTU: &mtu}
		if l.A.Addr.IsValid() {
			rl.IPv4 = []string{l.A.Addr.String(), l.B.Addr.String()}
		}
		if l.A.Addr6.IsValid() {
			rl.IPv6 = []string{l.A.Addr6.String(), l.B.Addr6.String()}
		}
		raw.Links = append(raw.Links, rl)
	}
	for _, v := range t.VIPs {
		port := integer(v.Port)
		rv := rawVIP{Address: v.Address.String(), Port: &port, Proto: string(v.Proto), Mode: string(v.Mode), Service: string(v.Service), Hash: string(v.Hash), LB: rawLB{list: v.Tier()}}
		for _, lb := range v.LBs {
			rv.LB.names = append(rv.LB.names, lb.Name)
		}
		for _, r := range v.Reals {
			weight := integer(r.Weight)
			rv.Reals = append(rv.Reals, rawReal{Node: r.Node.Name, Weight: &weight})
		}
		rv.HealthCheck = v.HealthCheck.raw()
		raw.VIPs = append(raw.VIPs, rv)
	}
	return raw
}

// annotate adds the comments and flow styles that make the rendering read
// like a hand-written topology file.
func (t *Topology) annotate(d document) {
	for _, n := range t.Nodes {
		if _, key := d.lookup(fieldPath{"nodes", n.Name}); key != nil {
			key.LineComment = "container " + n.ContainerName
		}
	}
	for i, l := range t.Links {
		p := fieldPath{"links", i}
		for j, ifc := range []*Interface{l.A, l.B} {
			if ep, _ := d.lookup(p.key("endpoints").index(j)); ep != nil {
				ep.LineComment = "mac " + ifc.MAC.String()
			}
		}
		if l.VXLAN != nil {
			if eps, key := d.lookup(p.key("endpoints")); eps != nil && key != nil {
				key.LineComment = fmt.Sprintf("vxlan vni %d, udp port %d", l.VXLAN.VNI, l.VXLAN.Port)
			}
		}
		for _, key := range []string{"ipv4", "ipv6"} {
			if addrs, _ := d.lookup(p.key(key)); addrs != nil {
				addrs.Style = yaml.FlowStyle
			}
		}
	}
	for i, v := range t.VIPs {
		for j := range v.Reals {
			if real, _ := d.lookup(fieldPath{"vips", i, "reals", j}); real != nil {
				real.Style = yaml.FlowStyle
			}
		}
	}
}

// raw is the program block that gives p.
func (p *Program) raw() *rawProgram {
	rp := &rawProgram{Source: p.Source, Object: p.Object, Name: p.Name, CFlags: p.CFlags, Interface: p.Interface.Name}
	if p.Type == ProgramTC {
		prio := integer(p.Priority)
		rp.Type, rp.Direction, rp.Priority = string(p.Type), p.Direction, &prio
	}
	for _, m := range p.Maps {
		if rp.Maps == nil {
			rp.Maps = map[string][]rawMapEntry{}
		}
		for _, e := range m.Entries {
			rp.Maps[m.Name] = append(rp.Maps[m.Name], rawMapEntry{Key: *e.Key, Value: *e.Value})
		}
	}
	for _, g := range p.Globals {
		if rp.Globals == nil {
			rp.Globals = map[string]yaml.Node{}
		}
		rp.Globals[g.Name] = *g.Value
	}
	return rp
}
