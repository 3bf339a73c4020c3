package prog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"
	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/bpf/btfvalue"
)

// Entry is one map entry in the kernel's byte layout. For a per-CPU map,
// Value is the value of one CPU; it is written on every CPU.
//
// An entry of a program array names instead the object's program it points
// to (Program): a tail call's target has no bytes until it is loaded, and
// Load writes its descriptor. An entry of a map of maps holds the object's
// map called Map, or with NewMap a map of its own made by Load: like the
// object's map called Map, or when Map is "" like the outer map's inner
// map as its BTF declares it.
type Entry struct {
	Key, Value []byte
	Program    string
	Map        string
	NewMap     bool
}

// byLoad says whether only a load writes the entry: what it points to is
// loaded with it.
func (e Entry) byLoad() bool { return e.Program != "" || e.Map != "" || e.NewMap }

// Describe is what the entry points to, for a digest of what a load sets:
// a program's name, "map NAME" or "a new map"; "" for an entry of bytes.
func (e Entry) Describe() string {
	switch {
	case e.Program != "":
		return e.Program
	case e.NewMap && e.Map != "":
		return "a new map like " + e.Map
	case e.NewMap:
		return "a new map"
	case e.Map != "":
		return "map " + e.Map
	}
	return ""
}

// u32 keys a program array whose key has no BTF type: the kernel's index.
var u32 = &btf.Int{Name: "__u32", Size: 4}

// Encode turns a topology entry (YAML key and value, by BTF field names) into
// bytes for the object's map called mapName. The value of a program
// array's entry is the name of a program of the object, of the chosen
// program's type. When only the
// value is wrong, the Entry returned with the error has its Key, so that a
// caller can still tell keys apart.
func (o *Object) Encode(mapName string, key, value *yaml.Node, r btfvalue.Resolver) (Entry, error) {
	ms, err := o.Map(mapName)
	if err != nil {
		return Entry{}, err
	}
	e, err := o.encode(ms, key, value, r)
	if e.Key == nil {
		return e, err
	}
	if ierr := checkIndex(ms.Type, ms.Name, ms.MaxEntries, e.Key, key); ierr != nil {
		if err == nil {
			return Entry{}, ierr
		}
		return e, append(flatten(ierr), flatten(err)...)
	}
	return e, err
}

// flatten lists the codec errors err holds, for joining those of a key and
// its value.
func flatten(err error) btfvalue.Errors {
	var list btfvalue.Errors
	var be *btfvalue.Error
	switch {
	case errors.As(err, &list):
		return list
	case errors.As(err, &be):
		return btfvalue.Errors{be}
	}
	return btfvalue.Errors{{Msg: err.Error()}}
}

func (o *Object) encode(ms *ebpf.MapSpec, key, value *yaml.Node, r btfvalue.Resolver) (Entry, error) {
	mapName := ms.Name
	if ms.Type == ebpf.ProgramArray {
		return o.encodeTailCall(ms, key, value, r)
	}
	if isMapOfMaps(ms.Type) {
		return o.encodeInnerMap(ms, key, value, r)
	}
	kt, vt, err := mapTypes(ms)
	if err != nil {
		return Entry{}, err
	}
	k, err := btfvalue.Encode(kt, key, r)
	if err != nil {
		return Entry{}, within(err, mapName+".key")
	}
	v, err := btfvalue.Encode(vt, value, r)
	if err != nil {
		return Entry{Key: k}, within(err, mapName+".value")
	}
	return Entry{Key: k, Value: v}, nil
}

// EncodeGlobal turns a topology value into the bytes of the object's
// global variable called name, by its BTF type, as Encode does for map
// entries.
func (o *Object) EncodeGlobal(name string, value *yaml.Node, r btfvalue.Resolver) ([]byte, error) {
	v, err := o.Global(name)
	if err != nil {
		return nil, err
	}
	if v.Type == nil {
		return nil, fmt.Errorf("global %s has no BTF type", name)
	}
	b, err := btfvalue.Encode(v.Type.Type, value, r)
	if err != nil {
		return nil, within(err, name)
	}
	return b, nil
}

// checkIndex refuses an array's key past its last entry where the key
// is written (the kernel only says E2BIG); n is nil for a key given on the
// command line.
func checkIndex(t ebpf.MapType, name string, max uint32, key []byte, n *yaml.Node) error {
	switch t {
	case ebpf.Array, ebpf.PerCPUArray, ebpf.ProgramArray, ebpf.ArrayOfMaps, ebpf.DevMap, ebpf.CPUMap, ebpf.XSKMap:
	default:
		return nil
	}
	if len(key) != 4 || binary.NativeEndian.Uint32(key) < max {
		return nil
	}
	msg := fmt.Sprintf("index %d is past the end of array %s: it has %d entries, 0..%d", binary.NativeEndian.Uint32(key), name, max, max-1)
	if n == nil {
		return fmt.Errorf("map %s: %s", name, msg)
	}
	return &btfvalue.Error{Line: n.Line, Column: n.Column, Path: name + ".key", Msg: msg}
}

// encodeIndex encodes the key of an array of programs or maps, which
// declares none in BTF when it is a plain index (a __u32).
func encodeIndex(ms *ebpf.MapSpec, key *yaml.Node, r btfvalue.Resolver) ([]byte, error) {
	kt := ms.Key
	if isVoid(kt) {
		kt = u32
	}
	k, err := btfvalue.Encode(kt, key, r)
	if err != nil {
		return nil, within(err, ms.Name+".key")
	}
	return k, nil
}

// encodeTailCall encodes an entry of a program array: its index, and the
// program, by name, a tail call through it reaches.
func (o *Object) encodeTailCall(ms *ebpf.MapSpec, key, value *yaml.Node, r btfvalue.Resolver) (Entry, error) {
	k, err := encodeIndex(ms, key, r)
	if err != nil {
		return Entry{}, err
	}
	// A tail call stays within its program's type.
	typ := o.Program.Type
	same := ofType(o.Spec, typ)
	what := typeNames[typ][0]
	bad := func(format string, args ...any) (Entry, error) {
		return Entry{}, &btfvalue.Error{Line: value.Line, Column: value.Column, Path: ms.Name + ".value",
			Msg: fmt.Sprintf(format, args...) + fmt.Sprintf("; the %s programs of the object: %s", what, listOrNone(same))}
	}
	if value.Kind != yaml.ScalarNode {
		return bad("an entry of program array %s names the program a tail call reaches", ms.Name)
	}
	p, ok := o.Spec.Programs[value.Value]
	switch {
	case !ok:
		return bad("no program %q in the object", value.Value)
	case p.Type != typ:
		return bad("program %q is a %s program: a tail call from %s reaches %s programs only", value.Value, p.Type, what, what)
	}
	return Entry{Key: k, Program: value.Value}, nil
}

// encodeInnerMap encodes an entry of a map of maps: its key, and the map
// it holds: one of the object's maps by name, {new: NAME} for a map of its
// own shaped like the object's map NAME (as Katran's loader fills its
// per-CPU LRU of LRUs, a fresh LRU per CPU), or {new: true} for one shaped
// like the inner map the outer map's BTF declares (__array(values, ...)).
func (o *Object) encodeInnerMap(ms *ebpf.MapSpec, key, value *yaml.Node, r btfvalue.Resolver) (Entry, error) {
	k, err := encodeIndex(ms, key, r)
	if err != nil {
		return Entry{}, err
	}
	var names []string
	for name, m := range o.Spec.Maps {
		if !strings.HasPrefix(name, ".") && name != ms.Name && m.Type != ebpf.ProgramArray {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	bad := func(n *yaml.Node, format string, args ...any) (Entry, error) {
		return Entry{}, &btfvalue.Error{Line: n.Line, Column: n.Column, Path: ms.Name + ".value",
			Msg: fmt.Sprintf(format, args...) + "; the maps of the object: " + listOrNone(names)}
	}
	n := value
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if !slices.Contains(names, n.Value) {
			return bad(value, "no map %q in the object to put in map of maps %s", n.Value, ms.Name)
		}
		return Entry{Key: k, Map: n.Value}, nil
	case yaml.MappingNode:
		if len(n.Content) != 2 || n.Content[0].Value != "new" || n.Content[1].Kind != yaml.ScalarNode {
			break
		}
		like := n.Content[1]
		switch {
		case like.Value == "true" && ms.InnerMap == nil:
			return bad(like, "map of maps %s declares no inner map (__array(values, ...)): give {new: MAP}, a map of the object to shape each new map like", ms.Name)
		case like.Value == "true":
			return Entry{Key: k, NewMap: true}, nil
		case !slices.Contains(names, like.Value):
			return bad(like, "no map %q in the object to shape a new map of %s like", like.Value, ms.Name)
		}
		return Entry{Key: k, NewMap: true, Map: like.Value}, nil
	}
	return bad(value, "an entry of map of maps %s is one of the object's maps by name, {new: MAP} for a map of its own shaped like the object's MAP, or {new: true} like the inner map its BTF declares", ms.Name)
}

// within names the map and the part of the entry in a codec error, keeping
// it a *btfvalue.Error: its line and column are what the topology's
// file:line:col message is made of.
func within(err error, prefix string) error {
	var be *btfvalue.Error
	var list btfvalue.Errors
	switch {
	case errors.As(err, &list):
		out := make(btfvalue.Errors, len(list))
		for i, e := range list {
			out[i] = e.Within(prefix)
		}
		return out
	case errors.As(err, &be):
		return be.Within(prefix)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// mapTypes returns the BTF types of a map's key and value: without them the
// entries cannot be written by field name.
func mapTypes(ms *ebpf.MapSpec) (key, value btf.Type, err error) {
	if _, globals := ms.Value.(*btf.Datasec); globals {
		return nil, nil, fmt.Errorf("map %s holds the program's global variables: give their values in the topology's program.globals (set at load)", ms.Name)
	}
	if isVoid(ms.Key) {
		return nil, nil, fmt.Errorf("map %s: its key has no BTF type: declare it with __type(key, ...) instead of __uint(key_size, ...)", ms.Name)
	}
	if isVoid(ms.Value) {
		return nil, nil, fmt.Errorf("map %s: its value has no BTF type: declare it with __type(value, ...) instead of __uint(value_size, ...)", ms.Name)
	}
	return ms.Key, ms.Value, nil
}

func isVoid(t btf.Type) bool {
	if t == nil {
		return true
	}
	_, void := t.(*btf.Void)
	return void
}

// Loaded is an object's XDP program in the kernel, with its maps filled,
// not attached anywhere.
type Loaded struct {
	Program *ebpf.Program
	// Maps are the object's maps by name.
	Maps map[string]*ebpf.Map
	coll *ebpf.Collection
}

// ProgramArrays names the loaded object's program arrays, sorted.
func (l *Loaded) ProgramArrays() []string {
	var names []string
	for name, m := range l.Maps {
		if m.Type() == ebpf.ProgramArray {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// StagePins pins the program arrays in dir, a directory of a bpffs, under
// names of their own ("new-" and the array's), before the program is
// attached: a pin that cannot be made then fails the attach rather than
// leave an attached program whose tail calls stop when dsrlab exits. The
// kernel empties a program array once no process holds it and no pin
// names it (its programs and it would otherwise keep each other forever).
// CommitPins puts the pins in place once the program is attached.
func (l *Loaded) StagePins(dir string) error {
	for _, name := range l.ProgramArrays() {
		tmp := stagedPin(dir, name)
		if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := l.Maps[name].Pin(tmp); err != nil {
			return fmt.Errorf("pin program array %s: %w", name, err)
		}
	}
	return nil
}

// CommitPins renames the staged pins over those of an earlier load, each
// in one rename; the earlier program's arrays are let go of then.
func (l *Loaded) CommitPins(dir string) error {
	for _, name := range l.ProgramArrays() {
		if err := os.Rename(stagedPin(dir, name), filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("pin program array %s: %w", name, err)
		}
	}
	return nil
}

// DropStagedPins removes the staged pins of a program that was not
// attached.
func (l *Loaded) DropStagedPins(dir string) {
	for _, name := range l.ProgramArrays() {
		_ = os.Remove(stagedPin(dir, name))
	}
}

// stagedPin is where StagePins pins an array: bpffs refuses dots in names,
// and no C identifier has a dash.
func stagedPin(dir, name string) string { return filepath.Join(dir, "new-"+name) }

// Close releases the program and maps; an attached program stays in the
// kernel as long as its attachment does.
func (l *Loaded) Close() error {
	l.coll.Close()
	return nil
}

// Load loads the object's XDP program and its maps into the kernel, its
// global variables (by name) set to the given bytes, and writes entries (by
// map name) before returning, so the program never runs with empty maps
// once it is attached. Constants (const volatile, in .rodata) can only be
// set so: the kernel freezes .rodata at load.
func (o *Object) Load(entries map[string][]Entry, globals map[string][]byte) (*Loaded, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	for name := range entries {
		if _, err := o.Map(name); err != nil {
			return nil, err
		}
	}
	spec := o.loadSpec()
	if err := innerMaps(spec, entries); err != nil {
		return nil, err
	}
	for name, value := range globals {
		v, err := o.Global(name)
		if err == nil && int(v.Size()) != len(value) {
			err = fmt.Errorf("global %s: %d bytes for a variable of %d", name, len(value), v.Size())
		}
		if err == nil {
			err = spec.Variables[name].Set(value)
		}
		if err != nil {
			return nil, err
		}
	}
	coll, err := loadCollection(spec)
	if err != nil {
		var ve *VerifierError
		if errors.As(err, &ve) {
			ve.Program = o.Program.Name
			return nil, ve
		}
		return nil, fmt.Errorf("load %s: %w", o.shown(), err)
	}
	l := &Loaded{Program: coll.Programs[o.Program.Name], Maps: coll.Maps, coll: coll}
	for name, es := range entries {
		if err := writeEntries(coll, spec, coll.Maps[name], spec.Maps[name].InnerMap, es); err != nil {
			coll.Close()
			return nil, fmt.Errorf("map %s: %w", name, err)
		}
	}
	return l, nil
}

// loadSpec keeps only the chosen program: cilium/ebpf loads every program of
// a collection, and another program of the object (a tc or kprobe one, or a
// second XDP one) may not load here at all. Objects with program arrays keep
// everything, since tail calls may reach any program.
//
// Maps pinned by name (LIBBPF_PIN_BY_NAME) are loaded unpinned: a pin in
// this host's bpffs would outlive the lab and be shared by every lab that
// loads the object, and nothing in the lab's containers could see it;
// `dsrlab map` reaches the maps through the attached program.
func (o *Object) loadSpec() *ebpf.CollectionSpec {
	spec := o.Spec.Copy()
	tailCalls := false
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
		tailCalls = tailCalls || m.Type == ebpf.ProgramArray
	}
	if tailCalls {
		return spec
	}
	for name := range spec.Programs {
		if name != o.Program.Name {
			delete(spec.Programs, name)
		}
	}
	return spec
}

// innerMaps gives each map of maps without an inner map in its BTF (as
// Katran declares its LRU of LRUs) the shape of the maps its entries put
// in it, as a loader sets an inner map prototype: the kernel checks every
// map put in against it.
func innerMaps(spec *ebpf.CollectionSpec, entries map[string][]Entry) error {
	for name, ms := range spec.Maps {
		if !isMapOfMaps(ms.Type) || ms.InnerMap != nil {
			continue
		}
		for _, e := range entries[name] {
			if e.Map != "" {
				ms.InnerMap = innerShape(spec.Maps[e.Map])
				break
			}
		}
		if ms.InnerMap == nil {
			return fmt.Errorf("map of maps %s declares no inner map (__array(values, ...)) and the topology puts none in it: give its entries in program.maps, e.g. {key: 0, value: {new: MAP}} with MAP a map of the object to shape them like", name)
		}
	}
	return nil
}

// innerShape is a map made like ms: no contents, no pin, no name of
// its own (a name would be one of many).
func innerShape(ms *ebpf.MapSpec) *ebpf.MapSpec {
	shape := ms.Copy()
	shape.Name, shape.Pinning, shape.Contents = "", ebpf.PinNone, nil
	return shape
}

func writeEntries(coll *ebpf.Collection, spec *ebpf.CollectionSpec, m *ebpf.Map, inner *ebpf.MapSpec, entries []Entry) error {
	for _, e := range entries {
		value := e.Value
		switch {
		case e.Program != "":
			value = binary.NativeEndian.AppendUint32(nil, uint32(coll.Programs[e.Program].FD()))
		case e.Map != "" && !e.NewMap:
			value = binary.NativeEndian.AppendUint32(nil, uint32(coll.Maps[e.Map].FD()))
		case e.NewMap:
			shape := inner
			if e.Map != "" {
				shape = innerShape(spec.Maps[e.Map])
			}
			// The outer map holds the new map; this descriptor is
			// let go of once it is in.
			fresh, err := ebpf.NewMap(shape)
			if err != nil {
				return fmt.Errorf("a new map for key %x: %w", e.Key, err)
			}
			err = putEntry(m, e.Key, binary.NativeEndian.AppendUint32(nil, uint32(fresh.FD())))
			fresh.Close()
			if err != nil {
				return err
			}
			continue
		}
		if err := putEntry(m, e.Key, value); err != nil {
			return err
		}
	}
	return nil
}

// putEntry writes value on every possible CPU of a per-CPU map: cilium/ebpf
// zero-fills the CPUs a shorter slice leaves out.
func putEntry(m *ebpf.Map, key, value []byte) error {
	if int(m.KeySize()) != len(key) || int(m.ValueSize()) != len(value) {
		return fmt.Errorf("entry of %d+%d bytes for a map of %d+%d", len(key), len(value), m.KeySize(), m.ValueSize())
	}
	if !isPerCPU(m.Type()) {
		return m.Put(key, value)
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	values := make([][]byte, n)
	for i := range values {
		values[i] = value
	}
	return m.Put(key, values)
}

func isPerCPU(t ebpf.MapType) bool {
	switch t {
	case ebpf.PerCPUHash, ebpf.PerCPUArray, ebpf.LRUCPUHash, ebpf.PerCPUCGroupStorage:
		return true
	}
	return false
}

// traceLimit is the most instructions the verifier may have processed
// for a rejection to be verified again with its instruction trace (the
// source line that failed): a trace costs about a line per instruction
// processed, and a million-instruction program would take seconds and a
// hundred megabytes to trace.
const traceLimit = 1 << 16

// traceBytes is the log room a trace needs per instruction processed.
const traceBytes = 256

// loadCollection loads a collection with the verifier's statistics log, which is a
// few lines however large the program, so that the verifier runs once
// whether it accepts or rejects. A rejection of a program small enough
// (traceLimit) is verified once more with the instruction trace, in a log
// sized from the instructions the first run processed.
func loadCollection(spec *ebpf.CollectionSpec) (*ebpf.Collection, error) {
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
	var ve *ebpf.VerifierError
	if err == nil || !errors.As(err, &ve) {
		return coll, err
	}
	rejected := &VerifierError{Err: ve.Cause, Log: ve.Log}
	n, ok := processed(ve.Log)
	if !ok || n > traceLimit {
		rejected.Untraced = n
		return nil, rejected
	}
	_, err = ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelBranch | ebpf.LogLevelStats, LogSizeStart: uint32(n+1) * traceBytes}})
	if errors.As(err, &ve) {
		rejected.Log = ve.Log
	}
	return nil, rejected
}

// processed reads the instructions the verifier processed from its
// statistics line.
func processed(log []string) (int, bool) {
	for _, line := range slices.Backward(log) {
		var n int
		if _, err := fmt.Sscanf(line, "processed %d insns", &n); err == nil {
			return n, true
		}
	}
	return 0, false
}

// verifierTail is how many lines of the verifier log end a VerifierError:
// enough for the failing instruction and the register state that explains it.
const verifierTail = 20

// VerifierError is the kernel's rejection of a program. Its message ends with
// the last lines of the verifier log, including the source line of the
// failing instruction (the log's "; code @ file.c:NN" lines, present when the
// object has BTF line info).
type VerifierError struct {
	Program string
	Err     error
	Log     []string
	// Untraced is how many instructions the verifier processed when the
	// rejection was too big to verify again with its trace: Log then
	// holds its reasons only.
	Untraced int
}

func (e *VerifierError) Unwrap() error { return e.Err }

func (e *VerifierError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the verifier rejected program %s: %v", e.Program, e.Err)
	log := e.Log
	// The statistics lines say nothing about the failure.
	for n := len(log); n > 0 && (strings.HasPrefix(log[n-1], "processed ") ||
		strings.HasPrefix(log[n-1], "verification time ") || strings.HasPrefix(log[n-1], "stack depth ")); n-- {
		log = log[:n-1]
	}
	start := max(len(log)-verifierTail, 0)
	src := lastSourceLine(log)
	if src >= 0 && src < start {
		fmt.Fprintf(&b, "\n  %s\n  ...", log[src])
	}
	for _, line := range log[start:] {
		fmt.Fprintf(&b, "\n  %s", line)
	}
	if e.Untraced > 0 {
		fmt.Fprintf(&b, "\n  (%d instructions processed: too many to verify again for the failing instruction's trace; "+
			"`bpftool -d prog load OBJECT /sys/fs/bpf/NAME` prints the whole log)", e.Untraced)
	}
	return b.String()
}

// lastSourceLine is the index of the last "; ... @ file:line" annotation,
// the source of the instruction the verifier stopped at, or -1.
func lastSourceLine(log []string) int {
	for i := len(log) - 1; i >= 0; i-- {
		if strings.HasPrefix(log[i], "; ") && strings.Contains(log[i], " @ ") {
			return i
		}
	}
	return -1
}
