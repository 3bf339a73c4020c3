package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"

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

const (
	// ipipDevice is the metadata-collecting tunnel device created on reals
	// whose kernel has IPIP.
	ipipDevice = "ipip0"
	// Program names as the kernel reports them; they tell dsrlab's own
	// programs from anything else attached to an interface.
	balancerProg = "xdp_balancer"
	decapProg    = "xdp_decap"
	// serviceTimeout bounds how long Up waits for an echo service to answer.
	serviceTimeout = 10 * time.Second
	// serviceWorkers start echo services at once.
	serviceWorkers = 8
)

// Up makes the lab match the topology. On a lab that is not up it creates
// everything; on one that is up it checks every piece and redoes only what
// is missing (a restarted container's links, a real's changed weight), so
// running it twice changes nothing. If a step fails, what this run created
// is removed again and the error names the step.
func Up(ctx context.Context, rt runtime.Runtime, topo *topology.Topology, rep Reporter) (sum *Summary, err error) {
	start := time.Now()
	flt, err := faultFromEnv()
	if err != nil {
		return nil, err
	}
	d := &deployment{
		topo: topo, rt: rt, rep: rep, fault: flt,
		containers: map[string]*runtime.Container{},
		created:    map[string]bool{},
		ns:         map[string]*netconf.Namespace{},
		sum:        &Summary{Lab: topo.Name, XDP: map[string]string{}, NAT: map[string]string{}, Decap: map[string]string{}},
	}
	defer d.closeNamespaces()
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
		{"nat", d.natBalancers},
		{"decap", d.decap},
		{"services", d.services},
	}

	for _, s := range steps {
		begin := time.Now()
		detail, err := func() (string, error) {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			if err := d.fault.atStart(s.name); err != nil {
				return "", err
			}
			return s.fn(ctx)
		}()
		rep.Step(s.name, time.Since(begin), detail, err)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	d.sum.Elapsed = time.Since(start)
	return d.sum, nil
}

type deployment struct {
	topo  *topology.Topology
	rt    runtime.Runtime
	rep   Reporter
	fault fault

	mu         sync.Mutex // guards containers and created while nodes start in parallel
	changeMu   sync.Mutex // guards sum.Changes and the reporter
	containers map[string]*runtime.Container
	created    map[string]bool // nodes whose container this run created
	started    []string        // containers this run created or restarted
	newState   bool            // this run recorded the lab's state
	ns         map[string]*netconf.Namespace
	sum        *Summary
}

// change counts and reports one thing Up did; steps call it from parallel
// workers.
func (d *deployment) change(step, msg string) {
	d.changeMu.Lock()
	defer d.changeMu.Unlock()
	d.sum.Changes++
	d.rep.Detail(step, msg)
}

func (d *deployment) labels(n *topology.Node) map[string]string {
	return map[string]string{
		LabelLab:      d.topo.Name,
		LabelNode:     n.Name,
		LabelKind:     string(n.Kind),
		LabelTopology: d.topo.File,
	}
}

// preflight refuses to take a container name that something else owns
// (dsrlab never touches what it did not create) and to reconcile a running
// lab into a differently wired one, which only --reconfigure may replace.
func (d *deployment) preflight(ctx context.Context) (string, error) {
	if err := d.rt.Ping(ctx); err != nil {
		return "", err
	}
	for _, n := range d.topo.Nodes {
		c, err := d.rt.Inspect(ctx, n.ContainerName)
		if errors.Is(err, runtime.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if c.Labels[LabelLab] == d.topo.Name && c.Labels[LabelNode] == n.Name {
			d.containers[n.Name] = c
			continue
		}
		owner := "was not created by dsrlab"
		if lab := c.Labels[LabelLab]; lab != "" {
			owner = fmt.Sprintf("belongs to dsrlab lab %q (node %s)", lab, c.Labels[LabelNode])
		}
		return "", fmt.Errorf("node %s: a container named %q already exists and %s; remove it or set a `prefix` in the topology",
			n.Name, n.ContainerName, owner)
	}
	running, err := d.rt.List(ctx, map[string]string{LabelLab: d.topo.Name})
	if err != nil {
		return "", err
	}
	if len(running) > 0 {
		if err := d.sameWiring(running); err != nil {
			return "", err
		}
	}
	if d.newState, err = saveState(d.topo); err != nil {
		return "", err
	}
	if len(running) > 0 {
		return fmt.Sprintf("lab is up (%d containers): reconciling", len(running)), nil
	}
	return "docker engine up, names free", nil
}

func (d *deployment) sameWiring(running []runtime.Container) error {
	for _, c := range running {
		if d.topo.Node(c.Labels[LabelNode]) == nil {
			return fmt.Errorf("lab %q is up with a node %q this topology does not have: "+
				"`dsrlab up --reconfigure` replaces the lab", d.topo.Name, c.Labels[LabelNode])
		}
	}
	old, err := LoadState(d.topo.Name)
	if err != nil {
		// Containers without state: a crash between the two, or state
		// removed by hand. The containers' labels matched; trust them.
		return nil
	}
	if diff := wiringDiff(old, d.topo); diff != "" {
		return fmt.Errorf("lab %q is up with a different wiring (%s); only VIP reals and weights change in place: "+
			"`dsrlab up --reconfigure` replaces the lab", d.topo.Name, diff)
	}
	return nil
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

// startContainers creates missing containers and starts stopped ones, in
// parallel: container start is the slowest part of Up.
func (d *deployment) startContainers(ctx context.Context) (string, error) {
	var wg sync.WaitGroup
	errs := make([]error, len(d.topo.Nodes))
	slots := 0
	for i, n := range d.topo.Nodes {
		existing := d.containers[n.Name]
		if existing != nil && existing.PID != 0 {
			continue
		}
		slot := slots
		slots++
		wg.Go(func() {
			if err := d.fault.atAction("containers", slot); err != nil {
				errs[i] = err
				return
			}
			c, err := d.ensureContainer(ctx, n, existing)
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
	if slots == 0 {
		return fmt.Sprintf("%d running", len(d.sum.Containers)), nil
	}
	return fmt.Sprintf("%d started", len(d.started)), nil
}

func (d *deployment) ensureContainer(ctx context.Context, n *topology.Node, existing *runtime.Container) (*runtime.Container, error) {
	if existing != nil {
		c, err := d.rt.Start(ctx, existing.ID)
		if err == nil {
			d.recordStart(n, false)
		}
		return c, err
	}
	cmd := keepalive
	switch {
	case n.Cmd != "":
		cmd = []string{"/bin/sh", "-c", n.Cmd}
	case n.Image == topology.DefaultImage && len(echoVIPs(d.topo.VIPsBackedBy(n))) > 0:
		// The real's echo service is its main process: it binds the VIPs
		// before they exist (IP_FREEBIND) and needs no exec later.
		cmd = echoCommand(n, echoVIPs(d.topo.VIPsBackedBy(n)))
	}
	c, err := d.rt.Run(ctx, runtime.ContainerSpec{
		Name: n.ContainerName, Hostname: n.Name, Image: n.Image, Cmd: cmd,
		Env: n.Env, Labels: d.labels(n), Sysctls: n.Sysctls, CapAdd: nodeCaps,
	})
	if err != nil {
		return nil, err
	}
	d.recordStart(n, true)
	return c, nil
}

func (d *deployment) recordStart(n *topology.Node, created bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.started = append(d.started, n.ContainerName)
	verb := "started stopped container "
	if created {
		d.created[n.Name] = true
		verb = "created "
	}
	d.change("containers", verb+n.ContainerName)
}

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
			if err := ns.ConfigureInterface(i.Name, i.Addr); err != nil {
				return "", err
			}
			if i.Addr.IsValid() {
				addrs++
			}
		}
		for _, v := range d.loopbackVIPs(n) {
			if err := ns.AddLoopbackAddress(v); err != nil {
				return "", err
			}
		}
		if n.Gateway.IsValid() {
			if err := ns.SetRoute(netip.Prefix{}, n.Gateway); err != nil {
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

// loadBalancers puts the XDP balancer on every katran that serves VIPs, or
// brings the one already attached up to date through its maps, without
// reloading it: established flows keep their reals.
func (d *deployment) loadBalancers(ctx context.Context) (string, error) {
	var report []string
	for _, k := range d.topo.NodesOfKind(topology.KindKatran) {
		vips := dsrVIPs(d.topo.VIPsServedBy(k))
		if len(vips) == 0 {
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
	prog, att, err := attached(ns, up.Name, balancerProg)
	if err != nil {
		return 0, "", err
	}
	if prog != nil {
		defer prog.Close()
		lb, err := bpf.OpenBalancer(prog)
		if err != nil {
			return 0, "", err
		}
		defer lb.Close()
		changed, err := d.programVIPs(lb, up, vips)
		if err != nil {
			return 0, "", err
		}
		if att.Mode == netconf.XDPNative {
			if err := d.ensurePeerStub(up.Peer); err != nil {
				return 0, "", err
			}
		}
		return att.Mode, fmt.Sprintf("(attached; %d VIPs updated in place)", changed), nil
	}
	lb, err := bpf.LoadBalancer(bpf.Options{})
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
	mode, err := d.attach(up, lb.Program().FD(), k.XDP, true)
	if err == nil {
		d.change("xdp", fmt.Sprintf("attached %s to %s in %s mode", balancerProg, up, mode))
	}
	return mode, "(loaded)", err
}

// programVIPs makes the balancer's maps hold exactly the topology's VIPs.
// It reports how many it had to change.
func (d *deployment) programVIPs(lb *bpf.Balancer, up *topology.Interface, vips []*topology.VIP) (int, error) {
	if err := lb.Configure(up.Addr.Addr(), up.Peer.MAC, up.MTU); err != nil {
		return 0, err
	}
	current, err := lb.VIPs()
	if err != nil {
		return 0, err
	}
	changed := 0
	want := map[bpf.VIP]bool{}
	for _, v := range vips {
		key := bpfVIP(v)
		want[key] = true
		reals := make([]bpf.Real, 0, len(v.Reals))
		for _, r := range v.Reals {
			reals = append(reals, bpf.Real{Addr: r.Node.Uplink().Addr.Addr(), Weight: r.Weight})
		}
		if sameReals(current[key], reals) {
			continue
		}
		if err := lb.SetVIP(key, reals); err != nil {
			return 0, fmt.Errorf("VIP %s: %w", v, err)
		}
		changed++
		d.change("xdp", fmt.Sprintf("VIP %s: reals %v", v, reals))
	}
	for v := range current {
		if !want[v] {
			if err := lb.DeleteVIP(v); err != nil {
				return 0, err
			}
			changed++
			d.change("xdp", fmt.Sprintf("VIP %s removed", v))
		}
	}
	return changed, nil
}

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
	return bpf.VIP{Addr: v.Address, Port: v.Port, Proto: proto}
}

// attached returns the program attached to an interface if it is ours
// (named want), nil if nothing is attached, and an error if something else
// is: dsrlab does not replace programs it did not put there.
func attached(ns *netconf.Namespace, ifname, want string) (*ebpf.Program, netconf.XDPAttachment, error) {
	att, err := ns.XDP(ifname)
	if err != nil || att.ProgID == 0 {
		return nil, att, err
	}
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(att.ProgID))
	if err != nil {
		return nil, att, fmt.Errorf("%s: XDP program %d: %w", ifname, att.ProgID, err)
	}
	info, err := prog.Info()
	if err != nil {
		prog.Close()
		return nil, att, fmt.Errorf("%s: XDP program %d: %w", ifname, att.ProgID, err)
	}
	if info.Name != want {
		prog.Close()
		return nil, att, fmt.Errorf("%s has XDP program %d (%q) attached, not dsrlab's %s", ifname, att.ProgID, info.Name, want)
	}
	return prog, att, nil
}

// attach puts a program on an interface in the wanted mode; auto tries
// native first and falls back to generic. A program that transmits
// (XDP_TX) in native mode on a veth needs an XDP program on the peer as
// well, or the peer drops every frame it is sent.
func (d *deployment) attach(i *topology.Interface, fd int, want topology.XDPMode, transmits bool) (netconf.XDPMode, error) {
	ns := d.ns[i.Node.Name]
	tryNative := func() error {
		if transmits {
			if err := d.ensurePeerStub(i.Peer); err != nil {
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
	err := tryNative()
	if err == nil {
		return netconf.XDPNative, nil
	}
	d.rep.Note(fmt.Sprintf("native XDP on %s unavailable (%v); using generic", i, err))
	return netconf.XDPGeneric, ns.AttachXDP(i.Name, fd, netconf.XDPGeneric)
}

func (d *deployment) ensurePeerStub(peer *topology.Interface) error {
	ns := d.ns[peer.Node.Name]
	att, err := ns.XDP(peer.Name)
	if err != nil || att.ProgID != 0 {
		return err
	}
	stub, err := bpf.LoadPass()
	if err != nil {
		return err
	}
	defer stub.Close()
	if err := ns.AttachXDP(peer.Name, stub.FD(), netconf.XDPNative); err != nil {
		return err
	}
	d.change("xdp", "attached XDP_PASS stub to "+peer.String())
	return nil
}

// decap makes every real accept IPIP: the kernel's tunnel device where the
// kernel has one, otherwise an XDP program that strips the outer header.
func (d *deployment) decap(ctx context.Context) (string, error) {
	for _, r := range d.topo.NodesOfKind(topology.KindReal) {
		if len(dsrVIPs(d.topo.VIPsBackedBy(r))) == 0 {
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
	ns := d.ns[r.Name]
	up := r.Uplink()
	if ok, err := ns.LinkExists(ipipDevice); err != nil || ok {
		return "ipip (kernel device " + ipipDevice + ")", err
	}
	prog, att, err := attached(ns, up.Name, decapProg)
	if err != nil {
		return "", err
	}
	if prog != nil {
		prog.Close()
		return xdpDecapMode(att.Mode, up), nil
	}
	if r.Decap != topology.DecapXDP {
		err := ns.AddIPIPDevice(ipipDevice)
		if err == nil {
			d.change("decap", "created "+ipipDevice+" on "+r.Name)
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
	mode, err := d.attach(up, dc.Program().FD(), topology.XDPAuto, false)
	if err != nil {
		return "", err
	}
	d.change("decap", fmt.Sprintf("attached %s to %s in %s mode", decapProg, up, mode))
	return xdpDecapMode(mode, up), nil
}

func xdpDecapMode(mode netconf.XDPMode, up *topology.Interface) string {
	return fmt.Sprintf("xdp (%s on %s; kernel has no ipip)", mode, up.Name)
}

// services starts the echo service wherever it does not answer, and runs
// the exec commands of the nodes this run created (they are not assumed to
// be safe to run twice).
func (d *deployment) services(ctx context.Context) (string, error) {
	type echoJob struct {
		real *topology.Node
		vip  *topology.VIP
	}
	var jobs []echoJob
	for _, r := range d.topo.NodesOfKind(topology.KindReal) {
		for _, v := range echoVIPs(d.topo.VIPsBackedBy(r)) {
			jobs = append(jobs, echoJob{r, v})
		}
	}
	// Starting a service costs an exec round trip and a wait for its first
	// answer, nearly all of it waiting: do several at once.
	answered := make([]bool, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, serviceWorkers)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ok, err := d.ensureEcho(ctx, j.real, j.vip)
			if err != nil {
				errs[i] = fmt.Errorf("node %s: echo service for %s: %w", j.real.Name, j.vip, err)
			}
			answered[i] = ok
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	running := 0
	for _, ok := range answered {
		if ok {
			running++
		}
	}
	execs := 0
	for _, n := range d.topo.Nodes {
		if !d.created[n.Name] {
			continue
		}
		for _, cmd := range n.Exec {
			var out strings.Builder
			code, err := d.rt.Exec(ctx, d.containers[n.Name].ID, []string{"/bin/sh", "-c", cmd}, runtime.ExecIO{Stdout: &out, Stderr: &out})
			if err != nil {
				return "", fmt.Errorf("node %s: exec %q: %w", n.Name, cmd, err)
			}
			if code != 0 {
				return "", fmt.Errorf("node %s: exec %q exited %d: %s", n.Name, cmd, code, strings.TrimSpace(out.String()))
			}
			execs++
		}
	}
	report := fmt.Sprintf("echo: %d started, %d already answering", len(jobs)-running, running)
	if execs > 0 {
		report += fmt.Sprintf("; %d exec commands", execs)
	}
	return report, nil
}

// ensureEcho reports true if the service already answered; otherwise it
// starts it and waits until it answers, so that Up returning means the VIP
// works.
func (d *deployment) ensureEcho(ctx context.Context, r *topology.Node, v *topology.VIP) (bool, error) {
	ns := d.ns[r.Name]
	at := echoAddr(r, v)
	if probe(ns, v.Proto, at) == nil {
		return true, nil
	}
	if err := d.rt.ExecDetached(ctx, d.containers[r.Name].ID, echoCommand(r, []*topology.VIP{v})); err != nil {
		return false, err
	}
	deadline := time.Now().Add(serviceTimeout)
	for {
		err := probe(ns, v.Proto, at)
		if err == nil {
			d.change("services", fmt.Sprintf("echo on %s for %s", r.Name, v))
			return false, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("no answer after %v (is %s in the image?): %w", serviceTimeout, image.BinaryPath, err)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// echoCommand runs the echo service of a real for some of its VIPs.
func echoCommand(r *topology.Node, vips []*topology.VIP) []string {
	cmd := []string{image.BinaryPath, "echo", "--node", r.Name, "--addr", r.Uplink().Addr.Addr().String()}
	for _, v := range vips {
		cmd = append(cmd, "--listen", fmt.Sprintf("%s/%s", v.Proto, echoAddr(r, v)))
	}
	return cmd
}

// echoAddr is where a real's echo service for v listens: the VIP itself for
// DSR, where packets arrive still addressed to it; the real's own address
// for NAT, where the balancer rewrote the destination.
func echoAddr(r *topology.Node, v *topology.VIP) netip.AddrPort {
	if v.NAT() {
		return netip.AddrPortFrom(r.Uplink().Addr.Addr(), v.Port)
	}
	return netip.AddrPortFrom(v.Address, v.Port)
}

// probe asks the echo service on a real for one answer, from inside the
// real's own namespace.
func probe(ns *netconf.Namespace, proto topology.Proto, at netip.AddrPort) error {
	c, err := ns.Dial(string(proto), at.String(), time.Second)
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

// rollback removes every container this run created, and the lab's state
// if this run recorded it. The containers' network namespaces go with them,
// and with those the veths and XDP programs: no kernel object is created
// outside a container's namespace. A lab that was already up before this
// run keeps what it had.
func (d *deployment) rollback() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for node := range d.created {
		c := d.containers[node]
		if err := d.rt.Remove(ctx, c.ID); err != nil {
			d.rep.Note("rollback: " + err.Error())
			continue
		}
		names = append(names, c.Name)
	}
	sort.Strings(names)
	if d.newState {
		if err := removeState(d.topo.Name); err != nil {
			d.rep.Note("rollback: " + err.Error())
		}
	}
	if len(names) > 0 {
		d.rep.Note("Rolled back: removed " + strings.Join(names, ", "))
	}
}
