package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/bpf/btfvalue"
	"github.com/dsrlab/dsrlab/bpf/prog"
	"github.com/dsrlab/dsrlab/internal/fileio"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// cacheDir holds compiled user programs by content hash, so an unchanged
// source is not compiled again.
func cacheDir() string { return dirFromEnv("DSRLAB_CACHE_DIR", "/var/cache/dsrlab/objects") }

// userProgram is a node's own program (XDP or TC) on its way into the
// lab: its object with its map entries and globals encoded, then the
// program loaded with its maps filled, not yet attached.
type userProgram struct {
	prog    *topology.Program
	obj     *prog.Object
	entries map[string][]prog.Entry
	globals map[string][]byte
	loaded  *prog.Loaded
}

// ProgramRecord is what the state keeps of a user's program once it is
// attached: which object it came from, so that `map` can decode its maps
// and `up` knows whether it must be replaced.
type ProgramRecord struct {
	File   string `json:"file"`   // the source or object the topology names
	Object string `json:"object"` // the object loaded (the cache's, for a source)
	Hash   string `json:"hash"`   // of the object
	Name   string `json:"name"`   // the program in it
	// Type is "tc" for a TC program, which Interface, Direction and
	// Priority place; "" for the node's XDP program.
	Type      string `json:"type,omitempty"`
	Interface string `json:"interface,omitempty"`
	Direction string `json:"direction,omitempty"`
	Priority  int    `json:"priority,omitempty"`
	// Load is a digest of what only a load sets: globals (constants
	// cannot change in a loaded program) and program arrays' entries
	// (their programs are the ones loaded with them). Other ones mean a
	// new load.
	Load string `json:"load,omitempty"`
}

// buildPrograms compiles, opens and encodes every user program before
// anything else is created, and loads those of this host's nodes, so that
// a compile error, a bad map value or a verifier rejection leaves nothing
// behind. Another host's kernel verifies its nodes' programs when its
// agent loads them. Errors name the topology file's line and column.
func (d *deployment) buildPrograms(ctx context.Context) (string, error) {
	var report []string
	for _, n := range d.topo.Nodes {
		for _, p := range n.Programs() {
			up, err := openUserProgram(ctx, d.topo, p, cacheDir())
			if err != nil {
				return "", err
			}
			if p.Type == topology.ProgramTC {
				d.tc[tcSlot(n, p)] = up
			} else {
				d.programs[n.Name] = up
			}
			if d.here(n) {
				if err := up.load(); err != nil {
					return "", err
				}
			}
			report = append(report, fmt.Sprintf("%s: %s (%s)", n.Name, up.obj.Program.Name, filepath.Base(p.File())))
		}
	}
	if len(report) == 0 {
		return "no programs", nil
	}
	return strings.Join(report, "; "), nil
}

// openUserProgram compiles a program block p when it is a source
// (into cache), opens the object and encodes the topology's map entries
// and globals for it: the one way from a topology's program block to an
// object ready to load (userProgram.load).
func openUserProgram(ctx context.Context, t *topology.Topology, p *topology.Program, cache string) (*userProgram, error) {
	object := p.Object
	if p.Source != "" {
		var err error
		if object, err = prog.Build(ctx, p.Source, p.CFlags, cache); err != nil {
			return nil, atProgram(p, err)
		}
	}
	obj, err := prog.OpenType(object, p.Source, p.Name, programType(p))
	if err != nil {
		return nil, atProgram(p, err)
	}
	return newUserProgram(t, p, obj)
}

// programType is the kernel's type of a program block's program.
func programType(p *topology.Program) ebpf.ProgramType {
	if p.Type == topology.ProgramTC {
		return ebpf.SchedCLS
	}
	return ebpf.XDP
}

// newUserProgram encodes the topology's map entries and globals of p for
// obj, reporting every mistake at once.
func newUserProgram(t *topology.Topology, p *topology.Program, obj *prog.Object) (*userProgram, error) {
	up := &userProgram{prog: p, obj: obj}
	var errs, gerrs []error
	up.entries, errs = up.encode(t)
	up.globals, gerrs = up.encodeGlobals(t)
	return up, errors.Join(append(errs, gerrs...)...)
}

// CheckPrograms is up's programs step short of loading, for validate: it
// compiles each node's source, opens its object and encodes its map
// entries and globals, and returns every mistake of every program at
// once. notes say what it could not check (no clang).
func CheckPrograms(ctx context.Context, t *topology.Topology) (notes []string, err error) {
	cache := cacheDir()
	// Not root, no cache of one's own: a throwaway one (the compiled
	// objects of a check are not needed again).
	if _, set := os.LookupEnv("DSRLAB_CACHE_DIR"); !set && os.Geteuid() != 0 {
		tmp, err := os.MkdirTemp("", "dsrlab-validate-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		cache = tmp
	}
	var errs []error
	for _, n := range t.Nodes {
		for _, p := range n.Programs() {
			_, err := openUserProgram(ctx, t, p, cache)
			switch {
			case errors.Is(err, prog.ErrNoClang):
				notes = append(notes, fmt.Sprintf("%s: program not compiled, so not checked: clang is not in PATH (scripts/install-deps.sh --clang)", p.FilePos))
			case err != nil:
				errs = append(errs, err)
			}
		}
	}
	return notes, errors.Join(errs...)
}

// atProgram places an error about a program where the topology names its
// source or object.
func atProgram(p *topology.Program, err error) error {
	which := "object"
	if p.Source != "" {
		which = "source"
	}
	return fmt.Errorf("%s: %s.%s: %w", p.FilePos, p.Field, which, err)
}

// load loads the program into this host's kernel, its maps filled.
func (up *userProgram) load() error {
	var err error
	if up.loaded, err = up.obj.Load(up.entries, up.globals); err != nil {
		return atProgram(up.prog, err)
	}
	return nil
}

// encode encodes the map entries the topology gives the program, by map.
// A key given twice is a mistake: the last would silently win.
func (up *userProgram) encode(t *topology.Topology) (map[string][]prog.Entry, []error) {
	p := up.prog
	entries := map[string][]prog.Entry{}
	var errs []error
	for _, m := range p.Maps {
		if _, err := up.obj.Map(m.Name); err != nil {
			errs = append(errs, up.placed(err, m.Pos, "maps", m.Name, ""))
			continue
		}
		first := map[string]int{}
		for i, e := range m.Entries {
			index := fmt.Sprintf("[%d]", i)
			enc, err := up.obj.Encode(m.Name, e.Key, e.Value, Resolver(t))
			if err != nil {
				errs = append(errs, up.placed(err, m.Pos, "maps", m.Name, index))
			}
			if enc.Key == nil {
				continue
			}
			if j, dup := first[string(enc.Key)]; dup {
				errs = append(errs, up.placed(&btfvalue.Error{Line: e.Key.Line, Column: e.Key.Column, Path: m.Name + ".key",
					Msg: fmt.Sprintf("the same key as %s[%d] (line %d): a map holds one entry per key", m.Name, j, m.Entries[j].Key.Line)},
					m.Pos, "maps", m.Name, index))
				continue
			}
			first[string(enc.Key)] = i
			if err == nil {
				entries[m.Name] = append(entries[m.Name], enc)
			}
		}
	}
	return entries, errs
}

// encodeGlobals encodes the values the topology gives the program's
// global variables, by name.
func (up *userProgram) encodeGlobals(t *topology.Topology) (map[string][]byte, []error) {
	globals := map[string][]byte{}
	var errs []error
	for _, g := range up.prog.Globals {
		b, err := up.obj.EncodeGlobal(g.Name, g.Value, Resolver(t))
		if err != nil {
			errs = append(errs, up.placed(err, g.Pos, "globals", g.Name, ""))
			continue
		}
		globals[g.Name] = b
	}
	return globals, errs
}

// placed positions an encoding error like the topology's own errors,
// file:line:col: field: message, at the value's place in the file when the
// codec knows it (else at pos, the map's or global's name).
func (up *userProgram) placed(err error, pos topology.Position, block, name, index string) error {
	field := fmt.Sprintf("%s.%s.%s", up.prog.Field, block, name)
	var list btfvalue.Errors
	if errors.As(err, &list) {
		errs := make([]error, len(list))
		for i, e := range list {
			errs[i] = up.placed(e, pos, block, name, index)
		}
		return errors.Join(errs...)
	}
	var be *btfvalue.Error
	if errors.As(err, &be) {
		return fmt.Errorf("%s:%d:%d: %s%s%s: %s", pos.File, be.Line, be.Column, field, index,
			strings.TrimPrefix(be.Path, name), be.Msg)
	}
	return fmt.Errorf("%s: %s: %w", pos, field, err)
}

// loadDigest sums what only a load sets, "" when there is nothing. A
// program array's entry is summed as earlier versions recorded it.
func (up *userProgram) loadDigest() string {
	h := sha256.New()
	n := 0
	for _, name := range slices.Sorted(maps.Keys(up.globals)) {
		fmt.Fprintf(h, "global %s=%x;", name, up.globals[name])
		n++
	}
	for _, name := range slices.Sorted(maps.Keys(up.entries)) {
		for _, e := range up.entries[name] {
			if d := e.Describe(); d != "" {
				fmt.Fprintf(h, "map %s[%x]=%s;", name, e.Key, d)
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Resolver turns NODE:IFACE in map values into that interface's IPv4
// address, IPv6 address or MAC, chosen by the size of the field it fills
// (4, 16 or 6 bytes).
func Resolver(t *topology.Topology) btfvalue.Resolver {
	return func(ref string, size int) ([]byte, error) {
		node, iface, ok := strings.Cut(ref, ":")
		n := t.Node(node)
		if !ok || n == nil {
			return nil, fmt.Errorf("%q names no node:interface of lab %q", ref, t.Name)
		}
		for _, i := range n.Interfaces {
			if i.Name != iface {
				continue
			}
			switch size {
			case 6:
				return i.MAC, nil
			case 4:
				if !i.Addr.IsValid() || !i.Addr.Addr().Is4() {
					return nil, fmt.Errorf("%s has no IPv4 address", ref)
				}
				a := i.Addr.Addr().As4()
				return a[:], nil
			case 16:
				if !i.Addr6.IsValid() {
					return nil, fmt.Errorf("%s has no IPv6 address", ref)
				}
				a := i.Addr6.Addr().As16()
				return a[:], nil
			}
			return nil, fmt.Errorf("%s fills 4-byte (IPv4), 6-byte (MAC) or 16-byte (IPv6) fields, not %d bytes", ref, size)
		}
		return nil, fmt.Errorf("node %s has no interface %q", node, iface)
	}
}

func (d *deployment) closePrograms() {
	for _, up := range d.programs {
		if up.loaded != nil {
			up.loaded.Close()
		}
	}
	for _, up := range d.tc {
		if up.loaded != nil {
			up.loaded.Close()
		}
	}
}

// attachProgram puts a node's own program on its interface. A program
// already there from an earlier up is replaced in one netlink request (the
// interface is never without a program) when the object changed; when it
// did not, only map entries that differ from the file are written again.
func (d *deployment) attachProgram(n *topology.Node) (netconf.XDPMode, error) {
	up := d.programs[n.Name]
	p := n.Program
	ns := d.ns[n.Name]
	att, err := ns.XDP(p.Interface.Name)
	if err != nil {
		return 0, err
	}
	if att, err = d.dropStub(p.Interface, att); err != nil {
		return 0, err
	}
	if att.ProgID != 0 {
		prev, err := d.programRecord(n.Name)
		if err != nil {
			return 0, fmt.Errorf("%s has XDP program %d attached, which this lab did not record; `dsrlab up --reconfigure` replaces the lab", p.Interface, att.ProgID)
		}
		running, err := bpf.OpenAttached(att.ProgID, p.Interface.String(), prev.Name)
		if err != nil {
			return 0, err
		}
		defer running.Close()
		if prev.Hash == up.obj.Hash() && prev.Name == up.obj.Program.Name && prev.Load == up.loadDigest() &&
			pinned(d.topo.Name, n.Name, up.loaded.ProgramArrays(), running) {
			changed, err := refreshMaps(up, running)
			if err == nil && changed > 0 {
				d.change("programs", fmt.Sprintf("%s: %d map entries written again", n.Name, changed))
			}
			return att.Mode, err
		}
		if err := d.withPins(up.loaded, []string{n.Name}, func() error { return ns.AttachXDP(p.Interface.Name, up.loaded.Program.FD(), att.Mode) }); err != nil {
			return 0, err
		}
		d.change("programs", fmt.Sprintf("replaced %s on %s with %s (%s)", prev.Name, p.Interface, up.obj.Program.Name, filepath.Base(p.File())))
		return att.Mode, d.recordProgram(n)
	}
	var mode netconf.XDPMode
	err = d.withPins(up.loaded, []string{n.Name}, func() (err error) {
		mode, err = d.attach(p.Interface, up.loaded.Program.FD(), n.XDP, true)
		return err
	})
	if err != nil {
		return 0, err
	}
	d.change("programs", fmt.Sprintf("attached %s (%s) to %s in %s mode", up.obj.Program.Name, filepath.Base(p.File()), p.Interface, mode))
	return mode, d.recordProgram(n)
}

// withPins runs attach, which puts a loaded program on its hook, with the
// pins of the program's arrays staged before and put in place after (see
// prog.Loaded.StagePins), in the lab's pin directory sub. Pins of an
// earlier program's arrays that this one does not have are let go of:
// they would keep that program's tail-called programs in the kernel.
func (d *deployment) withPins(loaded *prog.Loaded, sub []string, attach func() error) error {
	arrays := loaded.ProgramArrays()
	if len(arrays) == 0 {
		if err := attach(); err != nil {
			return err
		}
		return removeAllPins(filepath.Join(append([]string{pinRoot(), d.topo.Name}, sub...)...))
	}
	dir, err := pinDir(d.topo.Name, sub...)
	if err != nil {
		return err
	}
	if err := loaded.StagePins(dir); err != nil {
		loaded.DropStagedPins(dir)
		return err
	}
	if err := attach(); err != nil {
		loaded.DropStagedPins(dir)
		return err
	}
	if err := loaded.CommitPins(dir); err != nil {
		return err
	}
	old, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range old {
		if !slices.Contains(arrays, e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// refreshMaps writes the file's entries into the running program's maps
// where they differ, and reports how many it wrote.
func refreshMaps(up *userProgram, running *ebpf.Program) (int, error) {
	maps, err := prog.Maps(running, up.obj.Spec)
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, m := range maps {
			m.Close()
		}
	}()
	byName := map[string]*prog.Map{}
	for _, m := range maps {
		byName[m.Name] = m
	}
	changed := 0
	for name, es := range up.entries {
		m := byName[name]
		if m == nil {
			return 0, fmt.Errorf("the running program has no map %s", name)
		}
		for _, enc := range es {
			wrote, err := m.Write(enc)
			if err != nil {
				return 0, err
			}
			if wrote {
				changed++
			}
		}
	}
	return changed, nil
}

func programRecordFile(lab, node string) string {
	return filepath.Join(stateRoot(), lab, "programs", node+".json")
}

// programRecord is what up recorded of node's program. On another host's
// agent the records travel with the request: the state lives with the
// dsrlab that runs up.
func (d *deployment) programRecord(node string) (*ProgramRecord, error) {
	if d.records == nil {
		return loadProgramRecord(d.topo.Name, node)
	}
	if rec := d.records[node]; rec != nil {
		return rec, nil
	}
	return nil, fmt.Errorf("node %s: no program record: %w", node, os.ErrNotExist)
}

func (d *deployment) recordProgram(n *topology.Node) error {
	up := d.programs[n.Name]
	rec := ProgramRecord{File: n.Program.File(), Object: up.obj.Path, Hash: up.obj.Hash(), Name: up.obj.Program.Name, Load: up.loadDigest()}
	if d.records != nil {
		d.records[n.Name] = &rec
		return nil
	}
	return saveProgramRecord(d.topo.Name, n.Name, rec)
}

func saveProgramRecord(lab, node string, rec ProgramRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	file := programRecordFile(lab, node)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.WriteFile(file+".tmp", data, 0o644); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return os.Rename(file+".tmp", file)
}

func loadProgramRecord(lab, node string) (*ProgramRecord, error) {
	data, err := fileio.ReadRegular(programRecordFile(lab, node), fileio.MaxText)
	if err != nil {
		return nil, err
	}
	var rec ProgramRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", programRecordFile(lab, node), err)
	}
	return &rec, nil
}

// NodeMaps opens the maps of every XDP and TC program on a node's
// interfaces — the user's own, dsrlab's built-in ones — each matched to the
// object it was loaded from, so keys and values are read and written by
// BTF. The
// node runs on this host (RemoteMap reaches the others). The caller
// closes the maps.
func NodeMaps(ctx context.Context, rts runtime.Set, t *topology.Topology, node string) ([]*prog.Map, error) {
	ns, err := NodeNamespace(ctx, rts, t, node)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	own, err := recordedObject(t.Name, node)
	if err != nil {
		return nil, err
	}
	n := t.Node(node)
	maps, err := nodeMaps(ns, n, own)
	if err != nil {
		return nil, err
	}
	seen := map[ebpf.MapID]bool{}
	for _, m := range maps {
		seen[m.ID] = true
	}
	tc, err := tcMaps(ns, t.Name, n, seen)
	if err != nil {
		closeAll(maps)
		return nil, fmt.Errorf("node %s: %w", node, err)
	}
	return append(maps, tc...), nil
}

// recordedObject is the user's program that up attached to node, with
// the object it recorded (nil if that is gone: only decoding the
// program's maps needs it); nil when the node has none.
func recordedObject(lab, node string) (*AgentProgram, error) {
	rec, err := loadProgramRecord(lab, node)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	data, _ := fileio.ReadRegular(rec.Object, fileio.MaxObject)
	return &AgentProgram{Path: rec.Object, Object: data, Record: rec}, nil
}

// nodeMaps opens the maps of the programs on n's interfaces in ns; own is
// the user's program recorded for n, if any.
func nodeMaps(ns *netconf.Namespace, n *topology.Node, own *AgentProgram) ([]*prog.Map, error) {
	var out []*prog.Map
	fail := func(err error) ([]*prog.Map, error) {
		for _, m := range out {
			m.Close()
		}
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	seen := map[ebpf.MapID]bool{}
	for _, i := range n.Interfaces {
		att, err := ns.XDP(i.Name)
		if err != nil {
			return fail(err)
		}
		if att.ProgID == 0 {
			continue
		}
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(att.ProgID))
		if err != nil {
			return fail(fmt.Errorf("%s: XDP program %d: %w", i.Name, att.ProgID, err))
		}
		spec, users, err := programSpec(own, p)
		if err == nil {
			var maps []*prog.Map
			maps, err = prog.Maps(p, spec)
			for _, m := range maps {
				if seen[m.ID] {
					m.Close()
					continue
				}
				seen[m.ID] = true
				if users {
					learn(m, n.Program)
				}
				out = append(out, m)
			}
		}
		p.Close()
		if err != nil {
			return fail(err)
		}
	}
	return out, nil
}

// learn shows a map of the user's program as the topology writes its
// entries (see prog.Map.Learn).
func learn(m *prog.Map, p *topology.Program) {
	if p == nil {
		return
	}
	for _, mi := range p.Maps {
		if mi.Name != m.Name {
			continue
		}
		for _, e := range mi.Entries {
			m.Learn(e.Key, e.Value)
		}
	}
}

// programSpec finds the collection a running program was loaded from: the
// user's object (users), or dsrlab's own. nil (maps shown as bytes) when
// it is neither.
func programSpec(own *AgentProgram, p *ebpf.Program) (spec *ebpf.CollectionSpec, users bool, err error) {
	info, err := p.Info()
	if err != nil {
		return nil, false, err
	}
	if own != nil && bpf.NameIs(info.Name, own.Record.Name) {
		if own.Object == nil {
			return nil, false, fmt.Errorf("%s runs, but its object %s is gone: `dsrlab up` builds it again", own.Record.Name, own.Path)
		}
		obj, err := prog.Parse(own.Object, own.Path, own.Record.File, own.Record.Name)
		if err != nil {
			return nil, false, fmt.Errorf("the object of %s: %w", own.Record.Name, err)
		}
		return obj.Spec, true, nil
	}
	spec, _, err = bpf.BuiltinSpec(info.Name)
	return spec, false, err
}
