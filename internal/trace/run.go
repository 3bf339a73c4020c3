//go:build linux

package trace

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/capture/filter"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	tracebpf "github.com/dsrlab/dsrlab/internal/trace/bpf"
	"github.com/dsrlab/dsrlab/topology"
)

// Options choose the flow to trace.
type Options struct {
	VIP    *topology.VIP
	Client *topology.Node
	// Port is the port probed; 0 means the VIP's own.
	Port uint16
}

// probePayload is small: the trace shows every segment of the probe, and
// one short line is all it takes to get an answer.
const probePayload = 32

// settle is how long the trace goes on listening after the probe ended:
// the last acknowledgements, ICMP errors and drop reports are still on
// their way then.
const settle = 300 * time.Millisecond

// Run traces one probe flow from opt.Client to opt.VIP through the lab: it
// captures on every interface of every node and watches the kernel's drops
// in their namespaces while the client talks to the VIP.
func Run(ctx context.Context, rts runtime.Set, topo *topology.Topology, opt Options) (*Result, error) {
	v, client := opt.VIP, opt.Client
	port := opt.Port
	if port == 0 {
		port = v.Port
	}
	if port == topology.AnyPort {
		return nil, fmt.Errorf("VIP %s serves every port: name the one to probe", v)
	}
	f := &Flow{VIP: v, Client: client, Dst: netip.AddrPortFrom(v.Address, port)}
	for _, n := range topo.Nodes {
		// A trace reads every interface and the kernel's drops at once;
		// another host's are not this process's to watch.
		if !n.Host.Local() {
			return nil, fmt.Errorf("node %s runs on host %s: trace watches every node of a lab from one host, and runs on single-host labs only, for now", n.Name, n.Host.Name)
		}
	}

	nss := map[*topology.Node]*netconf.Namespace{}
	defer func() {
		for _, ns := range nss {
			ns.Close()
		}
	}()
	var sources []capture.Source
	var ifcs []*topology.Interface // by capture interface index
	for _, n := range topo.Nodes {
		ns, err := lab.NodeNamespace(ctx, rts, topo, n.Name)
		if err != nil {
			return nil, err
		}
		nss[n] = ns
		for _, ifc := range n.Interfaces {
			sources = append(sources, capture.Source{Node: n.Name, Iface: ifc.Name, NS: ns})
			ifcs = append(ifcs, ifc)
		}
	}
	c, err := capture.Open(sources, "ip or ip6")
	if err != nil {
		return nil, err
	}
	defer c.Close()

	res := &Result{Flow: f}
	w, err := watchDrops(nss)
	if err != nil {
		res.DropsOff = err.Error()
	}
	// The tracer's links and maps go on every path out, read or not.
	var drops []Drop
	stopDrops := func() {
		if w != nil {
			drops, w = w.stop(), nil
		}
	}
	defer stopDrops()

	var pkts []capture.Packet
	capCtx, stopCapture := context.WithCancel(ctx)
	defer stopCapture()
	var capErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		capErr = c.Run(capCtx, 0, func(p capture.Packet) error {
			pkts = append(pkts, p)
			return nil
		})
	}()

	ex, perr := lab.Probe(ctx, nss[client], f.Dst, v.Proto, probePayload)
	f.Local = ex.Local
	if !f.Local.Addr().IsValid() || f.Local.Addr().IsUnspecified() {
		// A connection that never came up has its port, not its
		// address: the client's own address is the one it used.
		f.Local = netip.AddrPortFrom(clientAddr(client, f.Dst.Addr().Is6()), f.Local.Port())
	}
	res.Probe = Probe{Answer: ex.Answer, From: ex.From}
	if perr != nil {
		res.Probe.Err = perr.Error()
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
	}
	stopCapture()
	wg.Wait()
	if capErr != nil {
		return nil, capErr
	}
	stopDrops()

	ifaces := c.Interfaces()
	obs := make([]Observation, 0, len(pkts))
	for _, p := range pkts {
		obs = append(obs, Observation{Time: p.Time, Iface: ifcs[p.Iface], Dir: p.Dir, Length: p.Length,
			Frame: capture.Decode(p.Data, ifaces[p.Iface].LinkType)})
	}
	res.Hops = f.Assemble(obs)
	res.Drops = f.collect(drops)
	res.Verdict = f.Judge(res.Hops, res.Probe, res.Drops)
	return res, nil
}

// clientAddr is the client's address on its link to a router, else on
// any link.
func clientAddr(n *topology.Node, v6 bool) netip.Addr {
	if up := n.Uplink(); up != nil && up.AddrOf(v6).IsValid() {
		return up.AddrOf(v6).Addr()
	}
	for _, ifc := range n.Interfaces {
		if ifc.AddrOf(v6).IsValid() {
			return ifc.AddrOf(v6).Addr()
		}
	}
	return netip.Addr{}
}

// dropWatch is the drop tracer running over the lab's namespaces.
type dropWatch struct {
	tr     *tracebpf.Tracer
	nodes  map[uint32]*topology.Node    // by netns inode
	ifaces map[uint32]map[uint32]string // netns inode → ifindex → name
	// programs names the XDP program on each interface, to say whose
	// XDP_DROP a drop in veth's XDP path was.
	programs map[uint32]map[uint32]string
	events   []tracebpf.Event
	done     chan struct{}
}

// watchDrops loads the drop tracer and has it watch every node's
// namespace.
func watchDrops(nss map[*topology.Node]*netconf.Namespace) (*dropWatch, error) {
	w := &dropWatch{nodes: map[uint32]*topology.Node{}, ifaces: map[uint32]map[uint32]string{},
		programs: map[uint32]map[uint32]string{}, done: make(chan struct{})}
	for n, ns := range nss {
		var st unix.Stat_t
		if err := unix.Fstat(ns.FD(), &st); err != nil {
			return nil, fmt.Errorf("node %s: namespace: %w", n.Name, err)
		}
		inum := uint32(st.Ino)
		w.nodes[inum] = n
		names, progs := map[uint32]string{}, map[uint32]string{}
		err := ns.Do(func() error {
			list, err := net.Interfaces()
			for _, i := range list {
				names[uint32(i.Index)] = i.Name
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("node %s: interfaces: %w", n.Name, err)
		}
		for index, name := range names {
			if x, err := ns.XDP(name); err == nil && x.ProgID != 0 {
				progs[index] = programName(x.ProgID)
			}
		}
		w.ifaces[inum], w.programs[inum] = names, progs
	}
	tr, err := tracebpf.LoadTracer()
	if err != nil {
		return nil, err
	}
	for inum := range w.nodes {
		if err := tr.Watch(inum); err != nil {
			tr.Close()
			return nil, fmt.Errorf("drop tracer: %w", err)
		}
	}
	w.tr = tr
	go func() {
		defer close(w.done)
		for {
			e, err := tr.Read()
			if err != nil {
				return // closed (or broken: what was read is kept)
			}
			w.events = append(w.events, e)
		}
	}()
	return w, nil
}

// stop detaches the tracer and names what it saw.
func (w *dropWatch) stop() []Drop {
	w.tr.Close()
	<-w.done
	if len(w.events) == 0 {
		return nil
	}
	reasons, err := tracebpf.DropReasons()
	if err != nil {
		reasons = nil // numbers then, rather than nothing
	}
	var syms *Symbols
	if kallsyms, err := os.Open("/proc/kallsyms"); err == nil {
		syms, _ = ReadSymbols(kallsyms)
		kallsyms.Close()
	}
	var drops []Drop
	for _, e := range w.events {
		n := w.nodes[e.Netns]
		if n == nil {
			continue
		}
		d := Drop{Node: n.Name, Iface: w.ifaces[e.Netns][e.Ifindex]}
		switch e.Kind {
		case tracebpf.KindXDPException:
			d.Reason, d.Program, d.XDP, d.Exception = XDPAction(e.Reason), e.ProgName, true, true
			if d.Program == "" {
				d.Program = fmt.Sprintf("id %d", e.ProgID)
			}
		case tracebpf.KindDrop:
			d.Reason, d.Function = ReasonName(reasons, e.Reason), syms.Name(e.Location)
			if d.XDP = xdpDrop(d.Reason, d.Function); d.XDP {
				d.Program = w.programs[e.Netns][e.Ifindex]
			}
			d.Frame = capture.Decode(e.Head, filter.RawIP)
			if len(d.Frame.IP) > 0 {
				d.Packet = d.Frame.String(false)
			}
		default:
			continue
		}
		drops = append(drops, d)
	}
	return drops
}

// programName is a loaded program's name, or its ID when the kernel
// does not tell.
func programName(id uint32) string {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err == nil {
		defer p.Close()
		if info, err := p.Info(); err == nil && info.Name != "" {
			return info.Name
		}
	}
	return fmt.Sprintf("id %d", id)
}
