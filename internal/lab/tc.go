package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf/prog"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

// Users' TC programs go on their interface's clsact hook as cls_bpf
// filters in direct-action mode, attached through netlink, not as TCX
// links. Like dsrlab's XDP attachments (DESIGN.md, pitfall 5) a filter
// belongs to the interface: it keeps running after dsrlab exits and goes
// away with the container, so there is no pin to keep, to find stale after
// a container restart, or to leak. It works on every kernel with clsact,
// the `priority` of the topology is tc's own, a filter is replaced at its
// priority in one request (the hook is never without a program), and
// map, inspect and trace find it by asking the kernel. TCX links would
// need a pin per program for the same lifetime.

// tcSlot names a TC program's place: node, interface, hook and priority.
// It keys the program in a deployment, its record and its pins.
func tcSlot(n *topology.Node, p *topology.Program) string {
	return slotName(n.Name, p.Interface.Name, p.Direction, p.Priority)
}

// slotName is tcSlot from its parts. No node name has a dot, and bpffs
// refuses dots in names: an interface's dots become underscores.
func slotName(node, iface, direction string, priority int) string {
	return fmt.Sprintf("%s.tc.%s.%s.%d", node, strings.ReplaceAll(iface, ".", "_"), direction, priority)
}

// tcPins is where a TC program's arrays are pinned, beside the nodes'
// directories ("_tc" is no node's name).
func tcPins(slot string) []string { return []string{"_tc", strings.ReplaceAll(slot, ".", "-")} }

// removeTCPins lets go of the program arrays of a node's TC programs.
func removeTCPins(lab string, n *topology.Node) error {
	for _, p := range n.TC {
		if err := removeAllPins(filepath.Join(append([]string{pinRoot(), lab}, tcPins(tcSlot(n, p))...)...)); err != nil {
			return err
		}
	}
	return nil
}

// attachTCPrograms puts the users' TC programs of this host's nodes on
// their hooks, replaces those whose object changed, refreshes the maps of
// the others, and takes away those the topology no longer has.
func (d *deployment) attachTCPrograms(context.Context) (string, error) {
	var report []string
	for _, n := range d.topo.Nodes {
		if !d.here(n) {
			continue
		}
		if err := d.dropStaleTC(n); err != nil {
			return "", fmt.Errorf("node %s: %w", n.Name, err)
		}
		for _, p := range n.TC {
			what, err := d.attachTC(n, p)
			if err != nil {
				return "", fmt.Errorf("node %s: %w", n.Name, err)
			}
			report = append(report, what)
		}
	}
	if len(report) == 0 {
		return "no TC programs", nil
	}
	return strings.Join(report, "; "), nil
}

// attachTC puts one TC program on its hook, or leaves the one there when
// it is the same object loaded the same way, writing back only the map
// entries that differ from the file.
func (d *deployment) attachTC(n *topology.Node, p *topology.Program) (string, error) {
	slot := tcSlot(n, p)
	up := d.tc[slot]
	ns := d.ns[n.Name]
	egress := p.Direction == "egress"
	where := fmt.Sprintf("%s:%s %s priority %d", n.Name, p.Interface.Name, p.Direction, p.Priority)
	cur, err := tcAt(ns, p.Interface.Name, egress, p.Priority)
	if err != nil {
		return "", err
	}
	rec, _ := loadProgramRecord(d.topo.Name, slot)
	if cur != nil && rec != nil && cur.Name == rec.Name && rec.Hash == up.obj.Hash() && rec.Name == up.obj.Program.Name &&
		rec.Load == up.loadDigest() {
		running, err := ebpf.NewProgramFromID(ebpf.ProgramID(cur.ProgID))
		if err != nil {
			return "", fmt.Errorf("%s: program %d: %w", where, cur.ProgID, err)
		}
		defer running.Close()
		if pinned(d.topo.Name, filepath.Join(tcPins(slot)...), up.loaded.ProgramArrays(), running) {
			changed, err := refreshMaps(up, running)
			if err != nil {
				return "", err
			}
			if changed > 0 {
				d.change("tc", fmt.Sprintf("%s: %d map entries written again", where, changed))
			}
			return fmt.Sprintf("%s %s", where, up.obj.Program.Name), nil
		}
	}
	err = d.withPins(up.loaded, tcPins(slot), func() error {
		return ns.AttachTC(p.Interface.Name, egress, uint16(p.Priority), up.loaded.Program.FD(), up.obj.Program.Name)
	})
	if err != nil {
		return "", err
	}
	verb := "attached"
	if cur != nil {
		verb = "replaced " + cur.Name + " with"
	}
	d.change("tc", fmt.Sprintf("%s %s (%s) on %s", verb, up.obj.Program.Name, filepath.Base(p.File()), where))
	rec = &ProgramRecord{File: p.File(), Object: up.obj.Path, Hash: up.obj.Hash(), Name: up.obj.Program.Name, Load: up.loadDigest(),
		Type: string(topology.ProgramTC), Interface: p.Interface.Name, Direction: p.Direction, Priority: p.Priority}
	if err := saveProgramRecord(d.topo.Name, slot, *rec); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s", where, up.obj.Program.Name), nil
}

// tcAt is the filter at a hook's priority, or nil.
func tcAt(ns *netconf.Namespace, iface string, egress bool, priority int) (*netconf.TCAttachment, error) {
	atts, err := ns.TC(iface)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		if a.Egress == egress && int(a.Priority) == priority {
			return &a, nil
		}
	}
	return nil, nil
}

// dropStaleTC takes off a node the TC programs an earlier up attached
// that the topology no longer has: those its records name, still there.
func (d *deployment) dropStaleTC(n *topology.Node) error {
	recs, err := tcRecords(d.topo.Name, n.Name)
	if err != nil {
		return err
	}
	for slot, rec := range recs {
		if _, wanted := d.tc[slot]; wanted {
			continue
		}
		egress := rec.Direction == "egress"
		var cur *netconf.TCAttachment
		there, err := d.ns[n.Name].LinkExists(rec.Interface)
		if err == nil && there {
			cur, err = tcAt(d.ns[n.Name], rec.Interface, egress, rec.Priority)
		}
		if err != nil {
			return err
		}
		if cur != nil && cur.Name == rec.Name {
			if err := d.ns[n.Name].DetachTC(rec.Interface, egress, uint16(rec.Priority)); err != nil {
				return err
			}
			d.change("tc", fmt.Sprintf("took %s off %s:%s %s priority %d", rec.Name, n.Name, rec.Interface, rec.Direction, rec.Priority))
		}
		if err := removeAllPins(filepath.Join(append([]string{pinRoot(), d.topo.Name}, tcPins(slot)...)...)); err != nil {
			return err
		}
		if err := os.Remove(programRecordFile(d.topo.Name, slot)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// tcRecords are the records of a node's TC programs, by slot.
func tcRecords(lab, node string) (map[string]*ProgramRecord, error) {
	files, err := filepath.Glob(programRecordFile(lab, node+".tc.*"))
	if err != nil {
		return nil, err
	}
	out := map[string]*ProgramRecord{}
	for _, f := range files {
		slot := strings.TrimSuffix(filepath.Base(f), ".json")
		rec, err := loadProgramRecord(lab, slot)
		if err != nil {
			return nil, err
		}
		out[slot] = rec
	}
	return out, nil
}

// tcMaps opens the maps of the TC programs on n's interfaces in ns, each
// matched to the object its record names (none: shown as bytes), and
// skips maps already in seen.
func tcMaps(ns *netconf.Namespace, lab string, n *topology.Node, seen map[ebpf.MapID]bool) ([]*prog.Map, error) {
	recs, err := tcRecords(lab, n.Name)
	if err != nil {
		return nil, err
	}
	var out []*prog.Map
	for _, i := range n.Interfaces {
		atts, err := ns.TC(i.Name)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		for _, a := range atts {
			slot := slotName(n.Name, i.Name, a.Direction(), int(a.Priority))
			maps, err := tcProgramMaps(a, recs[slot], tcBlock(n, slot))
			if err != nil {
				closeAll(out)
				return nil, fmt.Errorf("%s %s priority %d: %w", i.Name, a.Direction(), a.Priority, err)
			}
			for _, m := range maps {
				if seen[m.ID] {
					m.Close()
					continue
				}
				seen[m.ID] = true
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// tcProgramMaps opens the maps of the TC program a, decoded by the object
// of rec when rec describes it, as the topology's block p writes them.
func tcProgramMaps(a netconf.TCAttachment, rec *ProgramRecord, p *topology.Program) ([]*prog.Map, error) {
	running, err := ebpf.NewProgramFromID(ebpf.ProgramID(a.ProgID))
	if err != nil {
		return nil, fmt.Errorf("program %d: %w", a.ProgID, err)
	}
	defer running.Close()
	var spec *ebpf.CollectionSpec
	if rec != nil && rec.Name == a.Name {
		data, err := os.ReadFile(rec.Object)
		if err != nil {
			return nil, fmt.Errorf("%s runs, but its object %s is gone: `dsrlab up` builds it again", rec.Name, rec.Object)
		}
		obj, err := prog.ParseType(data, rec.Object, rec.File, rec.Name, ebpf.SchedCLS)
		if err != nil {
			return nil, fmt.Errorf("the object of %s: %w", rec.Name, err)
		}
		spec = obj.Spec
	}
	maps, err := prog.Maps(running, spec)
	if err != nil {
		return nil, err
	}
	if spec != nil {
		for _, m := range maps {
			learn(m, p)
		}
	}
	return maps, nil
}

// tcBlock is the topology's TC program of a slot, or nil.
func tcBlock(n *topology.Node, slot string) *topology.Program {
	for _, p := range n.TC {
		if tcSlot(n, p) == slot {
			return p
		}
	}
	return nil
}

func closeAll(maps []*prog.Map) {
	for _, m := range maps {
		m.Close()
	}
}
