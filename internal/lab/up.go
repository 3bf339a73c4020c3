package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// nodeCaps are the only capabilities containers get: enough for a user to
// run ip and ping inside. Everything dsrlab configures it does from the host,
// and privileged containers cannot start on every host.
var nodeCaps = []string{"NET_ADMIN", "NET_RAW"}

// keepalive keeps a container running when its node has no cmd, with any
// POSIX sh, and exits at once on SIGTERM (a plain sleep as PID 1 would not).
var keepalive = []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"}

// ipipDevice is the metadata-collecting tunnel device created on reals
// whose kernel has IPIP.
const ipipDevice = "ipip0"

// serviceTimeout bounds how long Up waits for an echo service to answer.
const serviceTimeout = 10 * time.Second

// Up brings a lab up. If any step fails, everything created so far is
// removed before Up returns the error, which names the step.
func Up(ctx context.Context, rt runtime.Runtime, topo *topology.Topology, out io.Writer) (sum *Summary, err error) {
	start := time.Now()
	d := &deployment{
		topo: topo, rt: rt, p: progress{out},
		containers: map[string]*runtime.Container{},
		ns:         map[string]*netconf.Namespace{},
		sum:        &Summary{Lab: topo.Name, XDP: map[string]string{}, Decap: map[string]string{}},
	}
	defer d.closeNamespaces()
	d.p.printf("Deploying lab %q from %s\n", topo.Name, topo.File)
	defer func() {
		if err != nil {
			d.rollback()
		}
	}()
	steps := []struct {
		name string
		fn   func(context.Context) (string, error)
	}{
		{"preflight", d.preflight},
		{"images", d.images},
		{"containers", d.startContainers},
		{"links", d.createLinks},
		{"addressing", d.address},
		{"xdp", d.loadBalancers},
		{"decap", d.decap},
		{"services", d.services},
	}
	for _, s := range steps {
		if err := d.p.step(s.name, func() (string, error) { return s.fn(ctx) }); err != nil {
			return nil, err
		}
	}
	d.sum.Elapsed = time.Since(start)
	return d.sum, nil
}

type deployment struct {
	topo *topology.Topology
	rt   runtime.Runtime
	p    progress

	mu         sync.Mutex // guards containers while they start in parallel
	containers map[string]*runtime.Container
	ns         map[string]*netconf.Namespace
	sum        *Summary
}

func (d *deployment) labels(n *topology.Node) map[string]string {
	return map[string]string{
		LabelLab:      d.topo.Name,
		LabelNode:     n.Name,
		LabelKind:     string(n.Kind),
		LabelTopology: d.topo.File,
	}
}

// preflight refuses to start over a lab that is already up or to take a
// container name that something else owns: dsrlab never touches what it did
// not create.
func (d *deployment) preflight(ctx context.Context) (string, error) {
	if err := d.rt.Ping(ctx); err != nil {
		return "", err
	}
	running, err := d.rt.List(ctx, map[string]string{LabelLab: d.topo.Name})
	if err != nil {
		return "", err
	}
	if len(running) > 0 {
		return "", fmt.Errorf("lab %q is already up (%d containers, e.g. %s): run `dsrlab down --name %s` first",
			d.topo.Name, len(running), running[0].Name, d.topo.Name)
	}
	for _, n := range d.topo.Nodes {
		c, err := d.rt.Inspect(ctx, n.ContainerName)
		if errors.Is(err, runtime.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		owner := "was not created by dsrlab"
		if lab := c.Labels[LabelLab]; lab != "" {
			owner = fmt.Sprintf("belongs to dsrlab lab %q", lab)
		}
		return "", fmt.Errorf("node %s: a container named %q already exists and %s; remove it or set a `prefix` in the topology",
			n.Name, n.ContainerName, owner)
	}
	return "docker engine up, names free", nil
}

func (d *deployment) images(ctx context.Context) (string, error) {
	seen := map[string]bool{}
	var report []string
	for _, n := range d.topo.Nodes {
		if seen[n.Image] {
			continue
		}
		seen[n.Image] = true
		if n.Image == topology.DefaultImage {
			built, err := image.Ensure(ctx, d.rt, n.Image, false)
			if err != nil {
				return "", err
			}
			if built {
				report = append(report, n.Image+" built")
			} else {
				report = append(report, n.Image+" present")
			}
			continue
		}
		if _, err := d.rt.ImageLabels(ctx, n.Image); err != nil {
			if errors.Is(err, runtime.ErrNotFound) {
				return "", fmt.Errorf("node %s: image %s is not present locally, and dsrlab never pulls: build or load it first", n.Name, n.Image)
			}
			return "", err
		}
		report = append(report, n.Image+" present")
	}
	return strings.Join(report, ", "), nil
}

func (d *deployment) startContainers(ctx context.Context) (string, error) {
	var wg sync.WaitGroup
	errs := make([]error, len(d.topo.Nodes))
	for i, n := range d.topo.Nodes {
		wg.Go(func() {
			cmd := keepalive
			if n.Cmd != "" {
				cmd = []string{"/bin/sh", "-c", n.Cmd}
			}
			c, err := d.rt.Run(ctx, runtime.ContainerSpec{
				Name: n.ContainerName, Hostname: n.Name, Image: n.Image, Cmd: cmd,
				Env: n.Env, Labels: d.labels(n), Sysctls: n.Sysctls, CapAdd: nodeCaps,
			})
			if err != nil {
				errs[i] = fmt.Errorf("node %s: %w", n.Name, err)
				return
			}
			d.mu.Lock()
			d.containers[n.Name] = c
			d.mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	for _, n := range d.topo.Nodes {
		ns, err := netconf.FromPID(d.containers[n.Name].PID, n.Name)
		if err != nil {
			return "", err
		}
		d.ns[n.Name] = ns
		d.sum.Containers = append(d.sum.Containers, n.ContainerName)
	}
	return fmt.Sprintf("%d started: %s", len(d.sum.Containers), strings.Join(d.sum.Containers, ", ")), nil
}

func (d *deployment) endpoint(i *topology.Interface) netconf.Endpoint {
	return netconf.Endpoint{NS: d.ns[i.Node.Name], Name: i.Name, MAC: i.MAC}
}

func (d *deployment) createLinks(ctx context.Context) (string, error) {
	var names []string
	for _, l := range d.topo.Links {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if err := netconf.CreateVeth(d.endpoint(l.A), d.endpoint(l.B), l.MTU); err != nil {
			return "", err
		}
		names = append(names, fmt.Sprintf("%s:%s-%s:%s", l.A.Node.Name, l.A.Name, l.B.Node.Name, l.B.Name))
	}
	d.sum.Links = len(names)
	return fmt.Sprintf("%d veth pairs (tx checksum offload off)", len(names)), nil
}

func (d *deployment) address(ctx context.Context) (string, error) {
	addrs, routes := 0, 0
	for _, n := range d.topo.Nodes {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		ns := d.ns[n.Name]
		for _, i := range n.Interfaces {
			if err := ns.ConfigureInterface(i.Name, i.Addr); err != nil {
				return "", err
			}
			if i.Addr.IsValid() {
				addrs++
			}
		}
		if n.Kind == topology.KindReal {
			for _, v := range d.topo.VIPsBackedBy(n) {
				if err := ns.AddLoopbackAddress(v.Address); err != nil {
					return "", err
				}
			}
		}
		if n.Gateway.IsValid() {
			if err := ns.AddRoute(netip.Prefix{}, n.Gateway); err != nil {
				return "", err
			}
			routes++
		}
		for _, r := range n.Routes {
			if err := ns.AddRoute(r.Dst, r.Via); err != nil {
				return "", err
			}
			routes++
		}
	}
	return fmt.Sprintf("%d addresses, %d routes", addrs, routes), nil
}

// loadBalancers loads and attaches the XDP balancer on every katran that
// serves VIPs. The maps are filled before the program is attached, so it
// never sees a packet half-configured.
func (d *deployment) loadBalancers(ctx context.Context) (string, error) {
	var report []string
	for _, k := range d.topo.NodesOfKind(topology.KindKatran) {
		vips := d.topo.VIPsServedBy(k)
		if len(vips) == 0 {
			continue
		}
		mode, err := d.loadBalancer(k, vips)
		if err != nil {
			return "", fmt.Errorf("node %s: %w", k.Name, err)
		}
		d.sum.XDP[k.Name] = mode.String()
		report = append(report, fmt.Sprintf("%s:%s %s, %d VIPs", k.Name, k.Uplink().Name, mode, len(vips)))
	}
	for _, v := range d.topo.VIPs {
		d.sum.VIPs = append(d.sum.VIPs, v.String())
	}
	if len(report) == 0 {
		return "no VIPs", nil
	}
	return strings.Join(report, "; "), nil
}

func (d *deployment) loadBalancer(k *topology.Node, vips []*topology.VIP) (netconf.XDPMode, error) {
	up := k.Uplink()
	lb, err := bpf.LoadBalancer()
	if err != nil {
		return 0, err
	}
	// Closing our handles is safe once attached: the interface holds the
	// program, and the program holds its maps.
	defer lb.Close()
	if err := lb.Configure(up.Addr.Addr(), up.Peer.MAC); err != nil {
		return 0, err
	}
	for _, v := range vips {
		reals := make([]netip.Addr, 0, len(v.Reals))
		for _, r := range v.Reals {
			reals = append(reals, r.Uplink().Addr.Addr())
		}
		if err := lb.SetVIP(bpfVIP(v), reals); err != nil {
			return 0, fmt.Errorf("VIP %s: %w", v, err)
		}
	}
	return d.attach(up, lb.Program().FD(), k.XDP, true)
}

func bpfVIP(v *topology.VIP) bpf.VIP {
	proto := bpf.ProtoTCP
	if v.Proto == topology.ProtoUDP {
		proto = bpf.ProtoUDP
	}
	return bpf.VIP{Addr: v.Address, Port: v.Port, Proto: proto}
}

// attach puts a program on an interface in the wanted mode; auto tries
// native first and falls back to generic. A program that transmits
// (XDP_TX) in native mode on a veth needs an XDP program on the peer as
// well, or the peer drops every frame it is sent.
func (d *deployment) attach(i *topology.Interface, fd int, want topology.XDPMode, transmits bool) (netconf.XDPMode, error) {
	ns := d.ns[i.Node.Name]
	tryNative := func() error {
		if transmits {
			if err := d.attachPeerStub(i.Peer); err != nil {
				return err
			}
		}
		if err := ns.AttachXDP(i.Name, fd, netconf.XDPNative); err != nil {
			if transmits {
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
	if err := tryNative(); err == nil {
		return netconf.XDPNative, nil
	} else {
		d.p.printf("  %-11s native XDP on %s:%s unavailable (%v); using generic\n", "", i.Node.Name, i.Name, err)
	}
	return netconf.XDPGeneric, ns.AttachXDP(i.Name, fd, netconf.XDPGeneric)
}

func (d *deployment) attachPeerStub(peer *topology.Interface) error {
	stub, err := bpf.LoadPass()
	if err != nil {
		return err
	}
	defer stub.Close()
	return d.ns[peer.Node.Name].AttachXDP(peer.Name, stub.FD(), netconf.XDPNative)
}

// decap makes every real accept IPIP: the kernel's tunnel device where the
// kernel has one, otherwise an XDP program that strips the outer header.
func (d *deployment) decap(ctx context.Context) (string, error) {
	var report []string
	for _, r := range d.topo.NodesOfKind(topology.KindReal) {
		if len(d.topo.VIPsBackedBy(r)) == 0 {
			continue
		}
		mode, err := d.decapReal(r)
		if err != nil {
			return "", fmt.Errorf("node %s: %w", r.Name, err)
		}
		d.sum.Decap[r.Name] = mode
		report = append(report, r.Name+" "+mode)
	}
	if len(report) == 0 {
		return "no reals", nil
	}
	return strings.Join(report, "; "), nil
}

func (d *deployment) decapReal(r *topology.Node) (string, error) {
	ns := d.ns[r.Name]
	if r.Decap != topology.DecapXDP {
		err := ns.AddIPIPDevice(ipipDevice)
		if err == nil {
			return "ipip (kernel device " + ipipDevice + ")", nil
		}
		if r.Decap == topology.DecapIPIP || !errors.Is(err, netconf.ErrNotSupported) {
			return "", err
		}
	}
	var dsts []netip.Addr
	for _, i := range r.Interfaces {
		if i.Addr.IsValid() {
			dsts = append(dsts, i.Addr.Addr())
		}
	}
	dc, err := bpf.LoadDecap(dsts)
	if err != nil {
		return "", err
	}
	defer dc.Close()
	up := r.Uplink()
	mode, err := d.attach(up, dc.Program().FD(), topology.XDPAuto, false)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("xdp (%s on %s; kernel has no ipip)", mode, up.Name), nil
}

// services starts the echo service on every real and runs each node's exec
// commands, now that the network is ready.
func (d *deployment) services(ctx context.Context) (string, error) {
	var report []string
	for _, r := range d.topo.NodesOfKind(topology.KindReal) {
		vips := d.topo.VIPsBackedBy(r)
		if len(vips) == 0 {
			continue
		}
		if err := d.startEcho(ctx, r, vips); err != nil {
			return "", fmt.Errorf("node %s: echo service: %w", r.Name, err)
		}
		report = append(report, fmt.Sprintf("echo on %s (%d ports)", r.Name, len(vips)))
	}
	execs := 0
	for _, n := range d.topo.Nodes {
		for _, cmd := range n.Exec {
			res, err := d.rt.Exec(ctx, d.containers[n.Name].ID, []string{"/bin/sh", "-c", cmd})
			if err != nil {
				return "", fmt.Errorf("node %s: exec %q: %w", n.Name, cmd, err)
			}
			if res.ExitCode != 0 {
				return "", fmt.Errorf("node %s: exec %q exited %d: %s", n.Name, cmd, res.ExitCode, strings.TrimSpace(res.Output))
			}
			execs++
		}
	}
	if execs > 0 {
		report = append(report, fmt.Sprintf("%d exec commands", execs))
	}
	if len(report) == 0 {
		return "none", nil
	}
	return strings.Join(report, ", "), nil
}

func (d *deployment) startEcho(ctx context.Context, r *topology.Node, vips []*topology.VIP) error {
	cmd := []string{image.BinaryPath, "echo", "--node", r.Name, "--addr", r.Uplink().Addr.Addr().String()}
	listeners := make([]string, 0, len(vips))
	for _, v := range vips {
		listeners = append(listeners, fmt.Sprintf("%s/%s", v.Proto, netip.AddrPortFrom(v.Address, v.Port)))
	}
	sort.Strings(listeners)
	for _, l := range listeners {
		cmd = append(cmd, "--listen", l)
	}
	if err := d.rt.ExecDetached(ctx, d.containers[r.Name].ID, cmd); err != nil {
		return err
	}
	return waitEcho(ctx, d.ns[r.Name], vips[0])
}

// waitEcho returns once the service answers locally, so that Up returning
// means the VIP works. The service binds all its ports before serving any.
func waitEcho(ctx context.Context, ns *netconf.Namespace, v *topology.VIP) error {
	addr := netip.AddrPortFrom(v.Address, v.Port).String()
	deadline := time.Now().Add(serviceTimeout)
	for {
		err := probe(ns, string(v.Proto), addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s/%s after %v: %w", v.Proto, addr, serviceTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func probe(ns *netconf.Namespace, network, addr string) error {
	c, err := ns.Dial(network, addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("dsrlab-probe\n")); err != nil {
		return err
	}
	buf := make([]byte, 256)
	_, err = c.Read(buf)
	return err
}

func (d *deployment) closeNamespaces() {
	for _, ns := range d.ns {
		ns.Close()
	}
}

// rollback removes every container this run created. Their network
// namespaces go with them, and with those the veths and XDP programs: no
// other kernel object was created outside a container's namespace.
func (d *deployment) rollback() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for _, c := range d.containers {
		if err := d.rt.Remove(ctx, c.ID); err != nil {
			d.p.printf("  rollback: %v\n", err)
			continue
		}
		names = append(names, c.Name)
	}
	sort.Strings(names)
	if len(names) > 0 {
		d.p.printf("Rolled back: removed %s\n", strings.Join(names, ", "))
	}
}
