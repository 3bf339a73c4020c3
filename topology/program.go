package topology

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// ProgramType is the hook a user's program goes on.
type ProgramType string

const (
	// ProgramXDP: the interface's XDP hook, one program per node.
	ProgramXDP ProgramType = "xdp"
	// ProgramTC: a clsact hook (ingress or egress), by priority.
	ProgramTC ProgramType = "tc"
)

// Program is a user's program on a node: a C source that dsrlab
// compiles, or a compiled BPF object, the program in it to attach, the
// interface (and for TC the hook and priority) it goes on, and the map
// entries to write before it sees a packet, and the global variables to
// set when it is loaded.
type Program struct {
	Type ProgramType
	// Direction ("ingress" or "egress") and Priority (1 first) place a
	// TC program on its interface.
	Direction string
	Priority  int
	// Field names the block in the file for messages: "nodes.k.program",
	// "nodes.r.programs[0]".
	Field string
	// Source or Object is set, never both; either is an absolute path
	// (the file gives it relative to the topology file).
	Source, Object string
	// Name is the program in the object; "" when it has only one of its type.
	Name string
	// CFlags are the user's compiler flags for Source, with the paths of
	// -I, -include and the like made absolute (the file gives them
	// relative to itself).
	CFlags    []string
	Interface *Interface
	Maps      []MapInit    // by map name
	Globals   []GlobalInit // by variable name
	// Pos is where the program block is in the topology file, and
	// FilePos where its source or object is named: the file's absence,
	// a compile error or a verifier rejection is reported there.
	Pos, FilePos Position
}

// Programs are the node's programs: its XDP program, then its TC ones.
func (n *Node) Programs() []*Program {
	var out []*Program
	if n.Program != nil {
		out = append(out, n.Program)
	}
	return append(out, n.TC...)
}

// File is the source or the object, whichever the program has.
func (p *Program) File() string { return cmp.Or(p.Source, p.Object) }

// MapInit is the initial entries of one of a program's maps.
type MapInit struct {
	Name    string
	Pos     Position
	Entries []MapEntry
}

// MapEntry is one entry as written in the file. Key and Value are encoded
// into the map's key and value types from the program's BTF when it is
// loaded; their YAML nodes carry the line and column for that encoding's
// errors.
type MapEntry struct {
	Key, Value *yaml.Node
}

// GlobalInit is the value of one of a program's global variables, as
// written in the file; it is encoded from the variable's BTF type when the
// program is loaded.
type GlobalInit struct {
	Name  string
	Pos   Position
	Value *yaml.Node
}

// Position is a place in a topology file.
type Position struct {
	File         string
	Line, Column int
}

func (p Position) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column) }

// pos returns where the field at p is in the file.
func (b *builder) pos(p fieldPath) Position {
	line, col := b.doc.position(p, false)
	return Position{File: b.file, Line: line, Column: col}
}

// hasXDPProgram: the node's program, or an xdp item of its programs.
func (rn *rawNode) hasXDPProgram() bool {
	return rn.Program != nil || slices.ContainsFunc(rn.Programs, func(rp rawProgram) bool {
		return rp.Type == "" || rp.Type == string(ProgramXDP)
	})
}

// buildPrograms reads the nodes' program blocks; it runs after the links,
// because a program's interface is one of its node's links. An xdp item
// of programs: is the node's XDP program, as program: would be.
func (b *builder) buildPrograms(t *Topology, raws map[string]*rawNode) {
	for _, n := range t.Nodes {
		rn := raws[n.Name]
		if rn == nil {
			continue
		}
		xdp := ""
		if rn.Program != nil {
			xdp = "program"
			n.Program = b.program(n, rn.Program, fieldPath{"nodes", n.Name, "program"}, 0)
		}
		slots := map[string]string{}
		for i := range rn.Programs {
			p := fieldPath{"nodes", n.Name, "programs"}.index(i)
			prog := b.program(n, &rn.Programs[i], p, i+1)
			switch {
			case prog == nil:
			case prog.Type == ProgramXDP && xdp != "":
				b.errorf(p, "%q has an XDP program already (%s): one per node; more go in its program arrays (tail calls)", n.Name, xdp)
			case prog.Type == ProgramXDP:
				xdp, n.Program = fmt.Sprintf("programs[%d]", i), prog
			default:
				slot := fmt.Sprintf("%s %s priority %d", prog.Interface.Name, prog.Direction, prog.Priority)
				if other, taken := slots[slot]; taken {
					b.errorf(p.key("priority"), "%s is taken by %s: give each program of a hook its own priority", slot, other)
					continue
				}
				slots[slot] = fmt.Sprintf("programs[%d]", i)
				n.TC = append(n.TC, prog)
			}
		}
	}
}

// program reads one program block at p. order is its place in programs:
// (1 for the first), the default priority of a TC program; 0 for
// program:, which holds the XDP program only.
func (b *builder) program(n *Node, rp *rawProgram, p fieldPath, order int) *Program {
	prog := &Program{Name: rp.Name, Pos: b.pos(p), Field: p.String(), Type: ProgramType(cmp.Or(rp.Type, string(ProgramXDP)))}
	ok := b.hook(n, prog, rp, p, order)
	switch {
	case rp.Source != "" && rp.Object != "":
		b.errorf(p.key("object"), "give either source (C, compiled by dsrlab) or object (a compiled BPF ELF), not both")
		ok = false
	case rp.Source == "" && rp.Object == "":
		b.errorf(p, "needs source (a C file, compiled by dsrlab) or object (a compiled BPF ELF)")
		ok = false
	case rp.Source != "":
		prog.Source, prog.FilePos = b.relative(rp.Source), b.pos(p.key("source"))
	default:
		prog.Object, prog.FilePos = b.relative(rp.Object), b.pos(p.key("object"))
	}
	if len(rp.CFlags) > 0 && rp.Source == "" {
		b.errorf(p.key("cflags"), "compiler flags go with a source; an object is already compiled")
		ok = false
	}
	var cok bool
	prog.CFlags, cok = b.cflags(rp.CFlags, p.key("cflags"))
	ok = ok && cok
	prog.Interface = b.programInterface(n, rp.Interface, p.key("interface"))
	ok = ok && prog.Interface != nil
	for _, name := range slices.Sorted(maps.Keys(rp.Maps)) {
		mp := p.key("maps").key(name)
		mi := MapInit{Name: name, Pos: b.pos(mp)}
		for i, e := range rp.Maps[name] {
			ep := mp.index(i)
			if e.Key.Kind == 0 {
				b.errorf(ep, "needs a key")
				ok = false
			}
			if e.Value.Kind == 0 {
				b.errorf(ep, "needs a value")
				ok = false
			}
			mi.Entries = append(mi.Entries, MapEntry{Key: &e.Key, Value: &e.Value})
		}
		prog.Maps = append(prog.Maps, mi)
	}
	for _, name := range slices.Sorted(maps.Keys(rp.Globals)) {
		v := rp.Globals[name]
		prog.Globals = append(prog.Globals, GlobalInit{Name: name, Pos: b.pos(p.key("globals").key(name)), Value: &v})
	}
	if !ok {
		return nil
	}
	return prog
}

// pathFlags are clang's flags that name a file or directory: their
// argument is resolved against the topology file, as source: is.
var pathFlags = []string{"-I", "-include", "-isystem", "-iquote", "-idirafter", "-imacros"}

// ownFlags are flags dsrlab sets itself for the BPF object it loads: a
// user's would make clang write something else, or somewhere else.
var ownFlags = []string{"-o", "-c", "-E", "-S", "-target", "--target", "-x", "-emit-llvm"}

// cflags checks a program's compiler flags and makes the paths they name
// absolute: "-Iinc", "-I inc" (two items) and "-include x.h".
func (b *builder) cflags(flags []string, p fieldPath) ([]string, bool) {
	var out []string
	ok := true
	for i := 0; i < len(flags); i++ {
		f := flags[i]
		if slices.Contains(ownFlags, f) || strings.HasPrefix(f, "--target=") || strings.HasPrefix(f, "-o") && f != "-o" {
			b.errorf(p.index(i), "%s is set by dsrlab (it compiles with -O2 -g -target bpf -c into its cache)", f)
			ok = false
			if f == "-o" || f == "-target" || f == "-x" {
				i++ // its argument
			}
			continue
		}
		if !strings.HasPrefix(f, "-") {
			b.errorf(p.index(i), "%q is not a flag: the source is program.source, and a flag's argument follows the flag", f)
			ok = false
			continue
		}
		name, arg := f, ""
		for _, pf := range pathFlags {
			// -include and -imacros take their argument as the next item
			// only; -I and the -i* directories also glued on.
			if f == pf || pf != "-include" && pf != "-imacros" && strings.HasPrefix(f, pf) {
				name, arg = pf, strings.TrimPrefix(f, pf)
				break
			}
		}
		if name == f && !slices.Contains(pathFlags, f) {
			out = append(out, f)
			continue
		}
		if arg == "" {
			if i+1 == len(flags) {
				b.errorf(p.index(i), "%s needs a path after it", f)
				ok = false
				continue
			}
			i++
			arg = flags[i]
		}
		out = append(out, name, b.relative(arg))
	}
	return out, ok
}

// MaxTCPriority is the last priority of a TC hook a user's program may
// take: dsrlab's health-check encapsulation runs after them, at the next.
const MaxTCPriority = 0xfffe

// hook checks a program's type and, for TC, its direction and priority.
func (b *builder) hook(n *Node, prog *Program, rp *rawProgram, p fieldPath, order int) bool {
	switch prog.Type {
	case ProgramXDP:
		ok := true
		if rp.Direction != "" {
			b.errorf(p.key("direction"), "goes with type: tc; an XDP program sees incoming packets only")
			ok = false
		}
		if rp.Priority != nil {
			b.errorf(p.key("priority"), "goes with type: tc; an interface has one XDP program")
			ok = false
		}
		return ok
	case ProgramTC:
	default:
		b.errorf(p.key("type"), "%q is not a program type (want xdp or tc)", rp.Type)
		return false
	}
	ok := true
	if order == 0 {
		b.errorf(p.key("type"), "program: is the node's XDP program; TC programs go in programs: (a list)")
		ok = false
	}
	switch rp.Direction {
	case "ingress", "egress":
		prog.Direction = rp.Direction
	case "":
		b.errorf(p, "a TC program needs direction: ingress or egress")
		ok = false
	default:
		b.errorf(p.key("direction"), "%q is not a direction (want ingress or egress)", rp.Direction)
		ok = false
	}
	prog.Priority = order
	if rp.Priority != nil {
		prog.Priority = int(*rp.Priority)
		if prog.Priority < 1 || prog.Priority > MaxTCPriority {
			b.errorf(p.key("priority"), "%d is out of range 1..%d (1 runs first; %d is dsrlab's health-check encapsulation)", prog.Priority, MaxTCPriority, MaxTCPriority+1)
			ok = false
		}
	}
	if n.Host != nil && !n.Host.Local() {
		b.errorf(p.key("type"), "TC programs go on nodes of the local host: %q is on host %s", n.Name, n.Host.Name)
		ok = false
	}
	return ok
}

// relative resolves a path the file gives relative to itself.
func (b *builder) relative(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	abs, err := filepath.Abs(filepath.Join(filepath.Dir(b.file), path))
	if err != nil {
		return path
	}
	return abs
}

func (b *builder) programInterface(n *Node, name string, p fieldPath) *Interface {
	if name == "" {
		if !n.Kind.spec().ProgramOnUplink {
			b.errorf(p, "required on a %s: the interface the program goes on", n.Kind)
			return nil
		}
		up := n.Uplink()
		if up == nil {
			b.errorf(p, "required: %q has no link to a router to put the program on", n.Name)
		}
		return up
	}
	for _, i := range n.Interfaces {
		if i.Name == name {
			return i
		}
	}
	var have []string
	for _, i := range n.Interfaces {
		have = append(have, i.Name)
	}
	b.errorf(p, "%q has no interface %q (it has %v)", n.Name, name, have)
	return nil
}
