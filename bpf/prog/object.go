package prog

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/internal/fileio"
)

// Object is a BPF ELF object with its program chosen.
type Object struct {
	// Path is the file the object was read from.
	Path string
	// Source is the C file Path was compiled from, "" for an object the
	// user gave: errors name it, not dsrlab's cache.
	Source string
	// Spec describes every program and map of the object.
	Spec *ebpf.CollectionSpec
	// Program is the program that Load loads.
	Program *ebpf.ProgramSpec
	// Data is the object's bytes as read: what another host's dsrlab
	// gets to load, which must be exactly what was hashed.
	Data []byte
	hash string
}

// Open reads a BPF ELF object and picks its XDP program called name, or its
// only XDP program when name is empty. Its maps must be described by BTF,
// since their entries are written and read by field name. source is the C
// file the object was built from, or "".
func Open(object, source, name string) (*Object, error) {
	return OpenType(object, source, name, ebpf.XDP)
}

// OpenType is Open of a program of type typ: ebpf.XDP, or ebpf.SchedCLS
// for a TC program.
func OpenType(object, source, name string, typ ebpf.ProgramType) (*Object, error) {
	// One read: the hash must describe exactly the bytes that are loaded,
	// even if the file is replaced meanwhile.
	data, err := fileio.ReadRegular(object, fileio.MaxObject)
	if err != nil {
		return nil, err
	}
	return ParseType(data, object, source, name, typ)
}

// Parse is Open of an object's bytes; path names where they came from.
func Parse(data []byte, path, source, name string) (*Object, error) {
	return ParseType(data, path, source, name, ebpf.XDP)
}

// ParseType is OpenType of an object's bytes.
func ParseType(data []byte, path, source, name string, typ ebpf.ProgramType) (*Object, error) {
	o := &Object{Path: path, Source: source, Data: data}
	if err := checkBTF(o.shown(), data); err != nil {
		return nil, err
	}
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.shown(), err)
	}
	p, err := pick(spec, name, typ)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.shown(), err)
	}
	sum := sha256.Sum256(data)
	o.Spec, o.Program, o.hash = spec, p, hex.EncodeToString(sum[:])
	return o, nil
}

// shown is the file errors about the object name: the user's.
func (o *Object) shown() string { return cmp.Or(o.Source, o.Path) }

// Hash is the SHA-256 of the object file: equal hashes mean there is nothing
// to reload.
func (o *Object) Hash() string { return o.hash }

// checkBTF rejects objects without a .BTF section before cilium/ebpf does,
// because its error for BTF-style maps without BTF does not say what to do.
func checkBTF(object string, data []byte) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: not a BPF ELF object: %w", object, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_BPF {
		return fmt.Errorf("%s: not a BPF object (machine %s): compile with clang -target bpf", object, f.Machine)
	}
	if f.Section(".BTF") == nil {
		return fmt.Errorf("%s: object has no BTF: compile with -g (clang -O2 -g -target bpf)", object)
	}
	return nil
}

// typeNames say how a program type is called and the section that makes
// one, for messages.
var typeNames = map[ebpf.ProgramType][2]string{
	ebpf.XDP:      {"XDP", "xdp"},
	ebpf.SchedCLS: {"TC", "tc"},
}

// ofType lists the object's programs of type typ, sorted.
func ofType(spec *ebpf.CollectionSpec, typ ebpf.ProgramType) []string {
	var names []string
	for n, p := range spec.Programs {
		if p.Type == typ {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

func pick(spec *ebpf.CollectionSpec, name string, typ ebpf.ProgramType) (*ebpf.ProgramSpec, error) {
	of := ofType(spec, typ)
	what, section := typeNames[typ][0], typeNames[typ][1]
	if name == "" {
		switch len(of) {
		case 1:
			return spec.Programs[of[0]], nil
		case 0:
			return nil, fmt.Errorf("no %s program in the object (put it in a section named %q: SEC(%q))", what, section, section)
		default:
			return nil, fmt.Errorf("several %s programs in the object, name one of: %s", what, strings.Join(of, ", "))
		}
	}
	p, ok := spec.Programs[name]
	switch {
	case ok && p.Type == typ:
		return p, nil
	case ok:
		return nil, fmt.Errorf("program %q is a %s program, not %s; %s programs: %s", name, p.Type, what, what, listOrNone(of))
	default:
		return nil, fmt.Errorf("no program %q in the object; %s programs: %s", name, what, listOrNone(of))
	}
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

// Map returns the spec of the object's map called name.
func (o *Object) Map(name string) (*ebpf.MapSpec, error) {
	if m, ok := o.Spec.Maps[name]; ok {
		return m, nil
	}
	names := slices.Sorted(maps.Keys(o.Spec.Maps))
	return nil, fmt.Errorf("no map %q in %s; its maps: %s", name, o.shown(), listOrNone(names))
}

// Global returns the spec of a global variable of the object (in .rodata,
// .data or .bss), or an error listing the ones there are.
func (o *Object) Global(name string) (*ebpf.VariableSpec, error) {
	if v, ok := o.Spec.Variables[name]; ok {
		return v, nil
	}
	names := slices.Sorted(maps.Keys(o.Spec.Variables))
	return nil, fmt.Errorf("no global variable %q in %s; its globals: %s", name, o.shown(), listOrNone(names))
}
