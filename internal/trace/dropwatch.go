//go:build linux

package trace

import (
	"fmt"
	"net"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/internal/netconf"
	tracebpf "github.com/dsrlab/dsrlab/internal/trace/bpf"
)

// dropWatch is the drop tracer running over one host's namespaces.
type dropWatch struct {
	tr     *tracebpf.Tracer
	nodes  map[uint32]string            // node name by netns inode
	ifaces map[uint32]map[uint32]string // netns inode → ifindex → name
	// programs names the XDP program on each interface, to say whose
	// XDP_DROP a drop in veth's XDP path was.
	programs map[uint32]map[uint32]string
	// tc names the TC programs on each hook, by netns inode, ifindex and
	// "ingress" or "egress", to say whose TC_ACT_SHOT a drop was.
	tc     map[uint32]map[uint32]map[string]string
	events []tracebpf.Event
	done   chan struct{}
}

// watchDrops loads the drop tracer and has it watch each node's
// namespace, given by node name.
func watchDrops(nss map[string]*netconf.Namespace) (*dropWatch, error) {
	w := &dropWatch{nodes: map[uint32]string{}, ifaces: map[uint32]map[uint32]string{},
		programs: map[uint32]map[uint32]string{}, tc: map[uint32]map[uint32]map[string]string{}, done: make(chan struct{})}
	for node, ns := range nss {
		var st unix.Stat_t
		if err := unix.Fstat(ns.FD(), &st); err != nil {
			return nil, fmt.Errorf("node %s: namespace: %w", node, err)
		}
		inum := uint32(st.Ino)
		w.nodes[inum] = node
		names, progs := map[uint32]string{}, map[uint32]string{}
		err := ns.Do(func() error {
			list, err := net.Interfaces()
			for _, i := range list {
				names[uint32(i.Index)] = i.Name
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("node %s: interfaces: %w", node, err)
		}
		tc := map[uint32]map[string]string{}
		for index, name := range names {
			if x, err := ns.XDP(name); err == nil && x.ProgID != 0 {
				progs[index] = programName(x.ProgID)
			}
			atts, _ := ns.TC(name)
			for _, a := range atts {
				if tc[index] == nil {
					tc[index] = map[string]string{}
				}
				if prev := tc[index][a.Direction()]; prev != "" {
					tc[index][a.Direction()] = prev + " or " + a.Name
				} else {
					tc[index][a.Direction()] = a.Name
				}
			}
		}
		w.ifaces[inum], w.programs[inum], w.tc[inum] = names, progs, tc
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

// close detaches the tracer.
func (w *dropWatch) close() {
	w.tr.Close()
	<-w.done
}

// stop detaches the tracer and names what it saw, here: the reasons
// and functions are this kernel's, another host's may differ.
func (w *dropWatch) stop() []seenDrop {
	w.close()
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
	var drops []seenDrop
	for _, e := range w.events {
		node, ok := w.nodes[e.Netns]
		if !ok {
			continue
		}
		d := seenDrop{Drop: Drop{Node: node, Iface: w.ifaces[e.Netns][e.Ifindex]}}
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
			if dir, tc := tcDirection(d.Reason); tc {
				d.TC, d.Program = true, w.tc[e.Netns][e.Ifindex][dir]
				if d.Program != "" {
					d.Program += " (" + dir + ")"
				}
			}
			d.Head = e.Head
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
