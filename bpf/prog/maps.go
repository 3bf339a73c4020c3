package prog

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/bpf/btfvalue"
)

// Map is a map of a loaded program, opened by ID, with the spec that
// describes its key and value when one matched it.
type Map struct {
	// Name is the map's name in the spec, or the kernel's (truncated) name
	// when no map of the spec matched.
	Name string
	ID   ebpf.MapID
	// Spec is nil when the spec has no such map: keys and values are then
	// shown as bytes and cannot be written by field name.
	Spec *ebpf.MapSpec
	m    *ebpf.Map
	// spec is the collection, whose program names a program array's
	// entries are shown by (the kernel keeps 15 characters of them).
	spec *ebpf.CollectionSpec
	// keyHints and valueHints are how the topology wrote the map's
	// entries (Learn), which its fields are shown by.
	keyHints, valueHints *btfvalue.Hints
}

// Learn records how the topology wrote an entry of the map, so that
// entries read back show their fields the same way: integers given as
// !be, unions by the member used. An entry that does not encode teaches
// nothing.
func (m *Map) Learn(key, value *yaml.Node) {
	if m.Spec == nil || m.Type() == ebpf.ProgramArray || isMapOfMaps(m.Type()) {
		return
	}
	kt, vt, err := mapTypes(m.Spec)
	if err != nil {
		return
	}
	if m.keyHints == nil {
		m.keyHints, m.valueHints = btfvalue.NewHints(), btfvalue.NewHints()
	}
	_, _ = m.keyHints.Encode(kt, key, nil)
	_, _ = m.valueHints.Encode(vt, value, nil)
}

// Type is the kernel's map type.
func (m *Map) Type() ebpf.MapType { return m.m.Type() }

// Close releases the map's file descriptor.
func (m *Map) Close() error { return m.m.Close() }

// Maps opens the maps a loaded program uses, and those of the programs its
// program arrays reach by tail calls (a map only they use is the
// program's too), and matches them by name to the maps of spec, the
// collection the program was loaded from. The caller closes them.
func Maps(p *ebpf.Program, spec *ebpf.CollectionSpec) ([]*Map, error) {
	var maps []*Map
	seen := map[ebpf.MapID]bool{}
	visited := map[ebpf.ProgramID]bool{}
	var walk func(p *ebpf.Program) error
	walk = func(p *ebpf.Program) error {
		info, err := p.Info()
		if err != nil {
			return fmt.Errorf("program info: %w", err)
		}
		if id, ok := info.ID(); ok {
			if visited[id] {
				return nil
			}
			visited[id] = true
		}
		ids, ok := info.MapIDs()
		if !ok {
			return errors.New("the kernel does not report the program's map IDs")
		}
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			m, err := ebpf.NewMapFromID(id)
			if err != nil {
				return fmt.Errorf("map %d: %w", id, err)
			}
			mi, err := m.Info()
			if err != nil {
				m.Close()
				return fmt.Errorf("map %d: %w", id, err)
			}
			name, ms := matchSpec(mi, spec)
			maps = append(maps, &Map{Name: name, ID: id, Spec: ms, m: m, spec: spec})
			if mi.Type == ebpf.ProgramArray {
				if err := walkTailCalls(m, walk); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(p); err != nil {
		closeMaps(maps)
		return nil, err
	}
	slices.SortFunc(maps, func(a, b *Map) int { return strings.Compare(a.Name, b.Name) })
	return maps, nil
}

// walkTailCalls calls walk with each program a program array holds. A
// program gone between the lookup and the open is skipped.
func walkTailCalls(m *ebpf.Map, walk func(*ebpf.Program) error) error {
	var key, value uint32
	it := m.Iterate()
	for it.Next(&key, &value) {
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(value))
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("program %d of a program array: %w", value, err)
		}
		err = walk(p)
		p.Close()
		if err != nil {
			return err
		}
	}
	return it.Err()
}

func closeMaps(maps []*Map) {
	for _, m := range maps {
		m.Close()
	}
}

// matchSpec finds the spec of a kernel map. The kernel keeps 15 characters
// of a name, cilium/ebpf drops characters the kernel refuses, and libbpf
// names global data maps "<object prefix>.rodata" where cilium/ebpf uses
// ".rodata": compare what the kernel would hold, and shape and type too, so
// two names with a common 15-character prefix are not confused.
func matchSpec(mi *ebpf.MapInfo, spec *ebpf.CollectionSpec) (string, *ebpf.MapSpec) {
	if spec != nil {
		names := make([]string, 0, len(spec.Maps))
		for n := range spec.Maps {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, global := range []bool{false, true} {
			for _, n := range names {
				ms := spec.Maps[n]
				if ms.Type != mi.Type || ms.KeySize != mi.KeySize || ms.ValueSize != mi.ValueSize {
					continue
				}
				kn := kernelName(n)
				if (!global && mi.Name == kn) || (global && strings.HasPrefix(n, ".") && strings.HasSuffix(mi.Name, kn)) {
					return n, ms
				}
			}
		}
	}
	return mi.Name, nil
}

// kernelName is the name the kernel holds for a map called name.
func kernelName(name string) string {
	kept := strings.Map(func(r rune) rune {
		if r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return -1
	}, name)
	if len(kept) > unix.BPF_OBJ_NAME_LEN-1 {
		kept = kept[:unix.BPF_OBJ_NAME_LEN-1]
	}
	return kept
}

// Field is a key or a value: its bytes, decoded by BTF where the spec
// describes it. The zero Field stands for a per-CPU sum that BTF cannot
// compute; it shows as "-" and JSON null.
type Field struct {
	Raw     []byte
	decoded *btfvalue.Value
	// program names the program a program array's entry holds.
	program string
}

// String shows the decoded value, or the bytes in hex without BTF.
func (f Field) String() string {
	if f.program != "" {
		return f.program
	}
	if f.decoded != nil {
		return f.decoded.String()
	}
	if f.Raw == nil {
		return "-"
	}
	hex := make([]string, len(f.Raw))
	for i, b := range f.Raw {
		hex[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(hex, " ")
}

// MarshalJSON gives the decoded value, or bpftool's ["0x0a", ...] without BTF.
func (f Field) MarshalJSON() ([]byte, error) {
	if f.program != "" {
		return json.Marshal(f.program)
	}
	if f.decoded != nil {
		return f.decoded.MarshalJSON()
	}
	if f.Raw == nil {
		return []byte("null"), nil
	}
	hex := make([]string, len(f.Raw))
	for i, b := range f.Raw {
		hex[i] = fmt.Sprintf("0x%02x", b)
	}
	return json.Marshal(hex)
}

// CPUValue is a per-CPU map's value on one CPU.
type CPUValue struct {
	CPU   int   `json:"cpu"`
	Value Field `json:"value"`
}

// DumpEntry is one entry of a map. For a per-CPU map, PerCPU holds the value
// of every possible CPU and Value their sum (counters added member by member;
// the zero Field without BTF).
type DumpEntry struct {
	Key    Field
	Value  Field
	PerCPU []CPUValue
}

// MarshalJSON follows bpftool's shape: {"key":..,"value":..}, or for a
// per-CPU map {"key":..,"values":[{"cpu":0,"value":..}],"sum":..}.
func (e DumpEntry) MarshalJSON() ([]byte, error) {
	if e.PerCPU == nil {
		return json.Marshal(struct {
			Key   Field `json:"key"`
			Value Field `json:"value"`
		}{e.Key, e.Value})
	}
	return json.Marshal(struct {
		Key    Field      `json:"key"`
		Values []CPUValue `json:"values"`
		Sum    Field      `json:"sum"`
	}{e.Key, e.PerCPU, e.Value})
}

// ValueString is the value as one line; for a per-CPU map the sum, then each
// CPU's value.
func (e DumpEntry) ValueString() string {
	if e.PerCPU == nil {
		return e.Value.String()
	}
	cpus := make([]string, len(e.PerCPU))
	for i, v := range e.PerCPU {
		cpus[i] = fmt.Sprintf("cpu%d %s", v.CPU, v.Value)
	}
	return fmt.Sprintf("%s (sum; %s)", e.Value, strings.Join(cpus, ", "))
}

func (e DumpEntry) String() string { return e.Key.String() + ": " + e.ValueString() }

// DumpOptions choose what Dump shows.
type DumpOptions struct {
	// All shows an array's zero entries too, which are otherwise left
	// out: an array has every index, whether the program uses it or not.
	All bool
	// Limit stops after that many entries shown; 0 shows every one.
	Limit int
}

// Dump reads the map's entries, stopping as soon as ctx is done (a map
// may hold millions) or Limit entries are read; more says the limit left
// entries unread.
func (m *Map) Dump(ctx context.Context, opts DumpOptions) (entries []DumpEntry, more bool, err error) {
	skipZero := isArray(m.Type()) && !opts.All
	err = m.walk(ctx, func(key, value []byte, values [][]byte) bool {
		if skipZero && allZero(value, values) {
			return true
		}
		if opts.Limit > 0 && len(entries) == opts.Limit {
			more = true
			return false
		}
		entries = append(entries, m.entry(key, value, values))
		return true
	})
	return entries, more, err
}

// entry decodes one entry: value for a map with one value, values (one
// per CPU) for a per-CPU map.
func (m *Map) entry(key, value []byte, values [][]byte) DumpEntry {
	if values == nil {
		v := m.decodeValue(value)
		switch {
		case m.Type() == ebpf.ProgramArray:
			v.program = m.programOf(value)
		case isMapOfMaps(m.Type()):
			v.program = innerOf(value)
		}
		return DumpEntry{Key: m.decodeKey(key), Value: v}
	}
	e := DumpEntry{Key: m.decodeKey(key), PerCPU: m.decodePerCPU(values)}
	if sum, ok := m.sum(values); ok {
		e.Value = sum
	}
	return e
}

func allZero(value []byte, values [][]byte) bool {
	for _, v := range append([][]byte{value}, values...) {
		if slices.ContainsFunc(v, func(b byte) bool { return b != 0 }) {
			return false
		}
	}
	return true
}

// walk calls fn with each entry until fn returns false, checking ctx
// between entries so that a map of millions stops at once on Ctrl-C.
func (m *Map) walk(ctx context.Context, fn func(key, value []byte, values [][]byte) bool) error {
	if err := m.byKey(); err != nil {
		return err
	}
	var key []byte
	it := m.m.Iterate()
	if !isPerCPU(m.Type()) {
		var value []byte
		for it.Next(&key, &value) {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !fn(key, value, nil) {
				return nil
			}
		}
	} else {
		var values [][]byte
		for it.Next(&key, &values) {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !fn(key, nil, values) {
				return nil
			}
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("map %s: %w", m.Name, err)
	}
	return nil
}

// byKey refuses maps whose contents are not entries by key: a ring
// buffer's records go to its reader, a queue's to whoever pops them.
func (m *Map) byKey() error {
	switch t := m.Type(); t {
	case ebpf.RingBuf, ebpf.UserRingbuf:
		return fmt.Errorf("map %s is a ring buffer (%s): the program's records in it are for a reader of the ring, not entries by key", m.Name, t)
	case ebpf.PerfEventArray:
		return fmt.Errorf("map %s is a perf event array: the program's records in it are for a perf reader, not entries by key", m.Name)
	case ebpf.Queue, ebpf.Stack, ebpf.BloomFilter:
		return fmt.Errorf("map %s is a %s: it has no entries by key", m.Name, t)
	}
	return nil
}

// countCap bounds what Info reads to count a map's entries: listing the
// maps of a node must stay quick whatever their size.
const countCap = 100000

// Info is a map as `dsrlab map NODE` lists it.
type Info struct {
	Name       string `json:"name"`
	ID         uint32 `json:"id"`
	Type       string `json:"type"`
	Key        string `json:"key"`
	Value      string `json:"value"`
	MaxEntries uint32 `json:"max_entries"`
	// InUse counts the entries a hash holds, the non-zero entries of an
	// array; nil when not counted (a ring buffer, an array larger than
	// countCap), and at least its value when AtLeast.
	InUse   *int `json:"in_use"`
	AtLeast bool `json:"in_use_at_least,omitempty"`
}

// Info describes the map, counting its entries in use up to countCap.
func (m *Map) Info(ctx context.Context) (Info, error) {
	in := Info{Name: m.Name, ID: uint32(m.ID), Type: m.Type().String(), MaxEntries: m.m.MaxEntries(),
		Key: fmt.Sprintf("%d bytes", m.m.KeySize()), Value: fmt.Sprintf("%d bytes", m.m.ValueSize())}
	if m.Spec != nil {
		if !isVoid(m.Spec.Key) {
			in.Key = btfvalue.TypeName(m.Spec.Key)
		}
		if !isVoid(m.Spec.Value) {
			in.Value = btfvalue.TypeName(m.Spec.Value)
		}
	}
	if m.byKey() != nil || isArray(m.Type()) && in.MaxEntries > countCap {
		return in, nil
	}
	n, seen := 0, 0
	err := m.walk(ctx, func(_, value []byte, values [][]byte) bool {
		seen++
		if !isArray(m.Type()) || !allZero(value, values) {
			n++
		}
		return seen < countCap
	})
	if err != nil {
		return in, err
	}
	in.InUse, in.AtLeast = &n, seen == countCap
	return in, nil
}

// Get reads the entry of key, written as in the topology.
func (m *Map) Get(key string, r btfvalue.Resolver) (DumpEntry, error) {
	if err := m.byKey(); err != nil {
		return DumpEntry{}, err
	}
	var kt btf.Type = u32
	if m.Spec != nil && !isVoid(m.Spec.Key) {
		kt = m.Spec.Key
	} else if !isArray(m.Type()) && m.Type() != ebpf.ProgramArray && !isMapOfMaps(m.Type()) {
		return DumpEntry{}, fmt.Errorf("map %s: its key has no BTF type, so it cannot be written by field name", m.Name)
	}
	k, err := btfvalue.EncodeString(kt, key, r)
	if err != nil {
		return DumpEntry{}, within(err, m.Name+".key")
	}
	var value []byte
	var values [][]byte
	if isPerCPU(m.Type()) {
		err = m.m.Lookup(k, &values)
	} else {
		err = m.m.Lookup(k, &value)
	}
	switch {
	case errors.Is(err, ebpf.ErrKeyNotExist):
		return DumpEntry{}, fmt.Errorf("map %s: no entry with key %s", m.Name, key)
	case err != nil:
		return DumpEntry{}, fmt.Errorf("map %s: lookup: %w", m.Name, err)
	}
	return m.entry(k, value, values), nil
}

// innerOf names the map whose ID a map of maps gives back for an entry.
func innerOf(value []byte) string {
	if len(value) != 4 {
		return ""
	}
	id := ebpf.MapID(binary.NativeEndian.Uint32(value))
	inner, err := ebpf.NewMapFromID(id)
	if err != nil {
		return fmt.Sprintf("map id %d", id)
	}
	defer inner.Close()
	info, err := inner.Info()
	if err != nil {
		return fmt.Sprintf("map id %d", id)
	}
	return fmt.Sprintf("%s (id %d, %s, %d entries at most)", cmp.Or(info.Name, "unnamed"), id, info.Type, info.MaxEntries)
}

func isMapOfMaps(t ebpf.MapType) bool { return t == ebpf.ArrayOfMaps || t == ebpf.HashOfMaps }

// programOf names the program whose ID a program array gives back for an
// entry, "xdp_second (id 42)": by the object's name for it where the
// kernel's (cut to 15 characters) is the start of only one.
func (m *Map) programOf(value []byte) string {
	if len(value) != 4 {
		return ""
	}
	id := ebpf.ProgramID(binary.NativeEndian.Uint32(value))
	name := "?"
	if p, err := ebpf.NewProgramFromID(id); err == nil {
		if info, err := p.Info(); err == nil {
			name = info.Name
		}
		p.Close()
	}
	if m.spec != nil {
		var full []string
		for n := range m.spec.Programs {
			if kernelName(n) == name {
				full = append(full, n)
			}
		}
		if len(full) == 1 {
			name = full[0]
		}
	}
	return fmt.Sprintf("%s (id %d)", name, id)
}

func (m *Map) decodeKey(b []byte) Field {
	if m.Spec == nil {
		return decode(nil, b, nil)
	}
	return decode(m.Spec.Key, b, m.keyHints)
}

func (m *Map) valueType() btf.Type {
	if m.Spec == nil {
		return nil
	}
	return m.Spec.Value
}

func (m *Map) decodeValue(b []byte) Field { return decode(m.valueType(), b, m.valueHints) }

func (m *Map) decodePerCPU(values [][]byte) []CPUValue {
	out := make([]CPUValue, len(values))
	for cpu, v := range values {
		out[cpu] = CPUValue{CPU: cpu, Value: m.decodeValue(v)}
	}
	return out
}

// sum adds up the CPUs' values where BTF says which members are counters.
func (m *Map) sum(values [][]byte) (Field, bool) {
	t := m.valueType()
	if isVoid(t) {
		return Field{}, false
	}
	_, sum, err := btfvalue.DecodePerCPU(t, values)
	if err != nil {
		return Field{}, false
	}
	return Field{decoded: &sum}, true
}

// decode falls back to bytes where BTF cannot describe them (no type, or a
// kind the codec does not show, such as a function prototype).
func decode(t btf.Type, b []byte, h *btfvalue.Hints) Field {
	f := Field{Raw: slices.Clone(b)}
	if isVoid(t) {
		return f
	}
	if v, err := h.Decode(t, b); err == nil {
		f.decoded = &v
	}
	return f
}

// Set writes one entry, key and value written as in the topology's maps
// (BTF field names, addresses, NODE:IFACE references resolved by r).
func (m *Map) Set(key, value string, r btfvalue.Resolver) error {
	if err := m.settable(); err != nil {
		return err
	}
	kt, vt, err := m.types()
	if err != nil {
		return err
	}
	k, err := btfvalue.EncodeString(kt, key, r)
	if err != nil {
		return within(err, m.Name+".key")
	}
	if err := checkIndex(m.Type(), m.Name, m.m.MaxEntries(), k, nil); err != nil {
		return err
	}
	v, err := btfvalue.EncodeString(vt, value, r)
	if err != nil {
		return within(err, m.Name+".value")
	}
	if err := putEntry(m.m, k, v); err != nil {
		return fmt.Errorf("map %s: %w", m.Name, err)
	}
	return nil
}

// Write puts an entry encoded by Object.Encode unless the map already holds
// exactly it (on every CPU, for a per-CPU map), and reports whether it
// wrote: `up` then says "nothing changed" about maps nobody touched.
//
// A program array's and a map of maps' entries are written by Load only:
// the program or map they point to is the one loaded with them, and `up`
// loads the object again when they change.
func (m *Map) Write(e Entry) (bool, error) {
	if e.byLoad() {
		return false, nil
	}
	same, err := m.holds(e)
	if err != nil || same {
		return false, err
	}
	if err := putEntry(m.m, e.Key, e.Value); err != nil {
		return false, fmt.Errorf("map %s: %w", m.Name, err)
	}
	return true, nil
}

func (m *Map) holds(e Entry) (bool, error) {
	var err error
	same := true
	if isPerCPU(m.Type()) {
		var cur [][]byte
		if err = m.m.Lookup(e.Key, &cur); err == nil {
			for _, v := range cur {
				same = same && bytes.Equal(v, e.Value)
			}
		}
	} else {
		var cur []byte
		if err = m.m.Lookup(e.Key, &cur); err == nil {
			same = bytes.Equal(cur, e.Value)
		}
	}
	switch {
	case errors.Is(err, ebpf.ErrKeyNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("map %s: lookup: %w", m.Name, err)
	}
	return same, nil
}

// settable refuses to change by hand the entries of a program array or a
// map of maps: they point to programs or maps loaded with them, and up,
// which would not see a change made here, writes them only by loading the
// object again. Maps without entries by key have nothing to change.
func (m *Map) settable() error {
	switch {
	case m.Type() == ebpf.ProgramArray:
		return fmt.Errorf("map %s is a program array: its entries point to programs loaded with them; give them in the topology's program.maps (`up` loads the object again)", m.Name)
	case isMapOfMaps(m.Type()):
		return fmt.Errorf("map %s is a map of maps: its entries are maps loaded with them; give them in the topology's program.maps, each an object's map by name or {new: true} (`up` loads the object again)", m.Name)
	}
	return m.byKey()
}

// Delete removes the entry of key.
func (m *Map) Delete(key string) error {
	if err := m.settable(); err != nil {
		return err
	}
	kt, _, err := m.types()
	if err != nil {
		return err
	}
	// No lab to resolve NODE:IFACE in: btfvalue refuses them with a nil
	// resolver.
	k, err := btfvalue.EncodeString(kt, key, nil)
	if err != nil {
		return within(err, m.Name+".key")
	}
	err = m.m.Delete(k)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ebpf.ErrKeyNotExist):
		return fmt.Errorf("map %s: no entry with key %s", m.Name, key)
	case errors.Is(err, unix.EINVAL) && isArray(m.Type()):
		return fmt.Errorf("map %s: entries of an array map cannot be deleted; set the value to zero instead", m.Name)
	default:
		return fmt.Errorf("map %s: delete: %w", m.Name, err)
	}
}

func (m *Map) types() (btf.Type, btf.Type, error) {
	if m.Spec == nil {
		return nil, nil, fmt.Errorf("map %s: not described by the program's object, so its entries cannot be written by field name", m.Name)
	}
	return mapTypes(m.Spec)
}

func isArray(t ebpf.MapType) bool { return t == ebpf.Array || t == ebpf.PerCPUArray }
