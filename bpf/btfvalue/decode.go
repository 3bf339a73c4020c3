package btfvalue

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"
	"gopkg.in/yaml.v3"
)

// Value is a decoded key or value: struct members in BTF order, numbers, addresses, MACs, enum
// names and text as such. String gives the one-line form EncodeString reads back to the same bytes;
// MarshalJSON gives JSON with numbers as numbers.
type Value struct {
	kind kind
	// text is a number's decimal digits, a string, or "true"/"false".
	text string
	// counter marks a plain host-order integer: the kind of field a per-CPU sum adds up.
	counter bool
	// be marks a number the topology wrote with BETag, which String writes so again.
	be    bool
	items []Value  // list elements, or struct members
	names []string // struct member names, parallel to items
}

type kind uint8

const (
	kindNumber kind = iota
	kindString
	kindBool
	kindList
	kindStruct
)

// Decode reads b, the bytes of a value of type t. A union shows the member
// whose size fits its non-zero bytes (an IPv4 address in the first 4 bytes
// of an IPv4/IPv6 union), or every member when several fit alike; Hints.Decode
// shows the member the topology used.
func Decode(t btf.Type, b []byte) (Value, error) { return decodeValue(t, b, nil) }

func decodeValue(t btf.Type, b []byte, h *Hints) (Value, error) {
	size, err := btf.Sizeof(t)
	if err != nil {
		return Value{}, fmt.Errorf("type %v has no size: %w", t, err)
	}
	if len(b) != size {
		return Value{}, fmt.Errorf("%d bytes for %s, which is %d", len(b), peel(t).name, size)
	}
	return decode(t, b, 0, h, "")
}

// DecodePerCPU decodes one value per CPU, and their sum: plain integers are added up, members that
// are not counters (addresses, enums, __be fields, text) are kept where all CPUs agree.
func DecodePerCPU(t btf.Type, values [][]byte) (perCPU []Value, sum Value, err error) {
	if len(values) == 0 {
		return nil, Value{}, errors.New("no per-CPU values")
	}
	for cpu, b := range values {
		v, err := decodeValue(t, b, nil)
		if err != nil {
			return nil, Value{}, fmt.Errorf("cpu %d: %w", cpu, err)
		}
		perCPU = append(perCPU, v)
	}
	return perCPU, add(perCPU), nil
}

// differs stands in the sum for a member that is not a counter and not the same on every CPU.
const differs = "(differs per CPU)"

func add(vs []Value) Value {
	first := vs[0]
	same := true
	for _, v := range vs[1:] {
		same = same && v.kind == first.kind && len(v.items) == len(first.items)
	}
	switch {
	case same && first.kind == kindNumber && first.counter:
		total := new(big.Int)
		for _, v := range vs {
			n, _ := new(big.Int).SetString(v.text, 10)
			total.Add(total, n)
		}
		return Value{kind: kindNumber, text: total.String(), counter: true}
	case same && (first.kind == kindList || first.kind == kindStruct):
		out := Value{kind: first.kind, names: first.names, items: make([]Value, len(first.items))}
		column := make([]Value, len(vs))
		for i := range first.items {
			for j, v := range vs {
				column[j] = v.items[i]
			}
			out.items[i] = add(column)
		}
		return out
	}
	for _, v := range vs[1:] {
		if v.String() != first.String() {
			return Value{kind: kindString, text: differs}
		}
	}
	return first
}

// decode reads b as t, the field at path (for hints).
func decode(t btf.Type, b []byte, depth int, h *Hints, path string) (Value, error) {
	f := peel(t)
	if depth > maxDepth {
		return Value{}, fmt.Errorf("%s nests deeper than %d levels", f.name, maxDepth)
	}
	switch u := f.t.(type) {
	case *btf.Int, *btf.Enum, *btf.Pointer:
		if shownAs(f) == 4 {
			return str(netip.AddrFrom4([4]byte(b)).String()), nil
		}
		if h.isBE(path) && isInteger(f.t) {
			v := number(f, readInt(b, true, isSigned(f)))
			v.be, v.counter = v.kind == kindNumber, false
			return v, nil
		}
		return number(f, readInt(b, f.be, isSigned(f))), nil
	case *btf.Array:
		return decodeArray(f, u, b, depth, h, path)
	case *btf.Struct, *btf.Union:
		v := Value{kind: kindStruct}
		ms, union, _ := members(u)
		if err := v.decodeMembers(ms, union, b, 0, depth, h, path); err != nil {
			return Value{}, err
		}
		return v, nil
	case *btf.Datasec:
		return decodeDatasec(u, b, depth, h)
	}
	return Value{}, fmt.Errorf("cannot read %s: fields of this kind are not supported", f.name)
}

// decodeDatasec reads the one value of a global data map (.rodata, .data,
// .bss) as its variables by name.
func decodeDatasec(ds *btf.Datasec, b []byte, depth int, h *Hints) (Value, error) {
	v := Value{kind: kindStruct}
	for _, vs := range ds.Vars {
		gv, ok := vs.Type.(*btf.Var)
		if !ok {
			continue
		}
		end := int(vs.Offset) + int(vs.Size)
		if end > len(b) {
			return Value{}, fmt.Errorf("%s: variable %s ends at byte %d of %d", ds.Name, gv.Name, end, len(b))
		}
		item, err := decode(gv.Type, b[vs.Offset:end], depth+1, h, gv.Name)
		if err != nil {
			return Value{}, fmt.Errorf("%s: %w", gv.Name, err)
		}
		v.names = append(v.names, gv.Name)
		v.items = append(v.items, item)
	}
	return v, nil
}

func str(s string) Value { return Value{kind: kindString, text: s} }

func isSigned(f field) bool {
	switch u := f.t.(type) {
	case *btf.Int:
		return u.Encoding == btf.Signed
	case *btf.Enum:
		return u.Signed
	}
	return false
}

// readInt reads b as an integer of len(b)*8 bits, the inverse of putInt.
func readInt(b []byte, be, signed bool) *big.Int {
	buf := make([]byte, len(b))
	copy(buf, b)
	if !be {
		for i, j := 0, len(buf)-1; i < j; i, j = i+1, j-1 {
			buf[i], buf[j] = buf[j], buf[i]
		}
	}
	return fromTwos(new(big.Int).SetBytes(buf), len(b)*8, signed)
}

// fromTwos reads u, a two's-complement pattern of bits bits.
func fromTwos(u *big.Int, bits int, signed bool) *big.Int {
	if signed && bits > 0 && u.Bit(bits-1) == 1 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	}
	return u
}

// number renders an integer-like field: an enum by its name, a bool as one, the rest as numbers.
func number(f field, v *big.Int) Value {
	switch u := f.t.(type) {
	case *btf.Enum:
		for _, ev := range u.Values {
			if (u.Signed && big.NewInt(int64(ev.Value)).Cmp(v) == 0) ||
				(!u.Signed && new(big.Int).SetUint64(ev.Value).Cmp(v) == 0) {
				return str(ev.Name)
			}
		}
		return Value{kind: kindNumber, text: v.String()}
	case *btf.Int:
		if u.Encoding == btf.Bool && v.BitLen() <= 1 {
			return Value{kind: kindBool, text: fmt.Sprint(v.Sign() == 1)}
		}
		return Value{kind: kindNumber, text: v.String(), counter: !f.be && u.Encoding != btf.Bool}
	}
	return Value{kind: kindNumber, text: v.String()}
}

func decodeArray(f field, a *btf.Array, b []byte, depth int, h *Hints, path string) (Value, error) {
	switch shownAs(f) {
	case 6:
		return str(net.HardwareAddr(b).String()), nil
	case 16:
		return str(netip.AddrFrom16([16]byte(b)).String()), nil
	}
	if isChar(peel(a.Type)) {
		if s, ok := text(b); ok {
			return str(s), nil
		}
	}
	v := Value{kind: kindList}
	if a.Nelems == 0 {
		return v, nil
	}
	elemSize := len(b) / int(a.Nelems)
	for i := range int(a.Nelems) {
		item, err := decode(a.Type, b[i*elemSize:(i+1)*elemSize], depth+1, h, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return Value{}, fmt.Errorf("[%d]: %w", i, err)
		}
		v.items = append(v.items, item)
	}
	return v, nil
}

// text returns the string a char array holds, if it holds one that writing it back reproduces:
// printable ASCII, then only NULs.
func text(b []byte) (string, bool) {
	end := len(b)
	for i, c := range b {
		if c == 0 {
			end = i
			break
		}
		if c < 0x20 || c > 0x7e {
			return "", false
		}
	}
	for _, c := range b[end:] {
		if c != 0 {
			return "", false
		}
	}
	return string(b[:end]), true
}

// decodeMembers appends the members of a struct or union at byte off of b to v, the value at path.
func (v *Value) decodeMembers(ms []btf.Member, union bool, b []byte, off, depth int, h *Hints, path string) error {
	if depth > maxDepth {
		return fmt.Errorf("nests deeper than %d levels", maxDepth)
	}
	if union && len(ms) > 1 {
		ms = unionShown(ms, b[off:], h.memberOf(path, ms))
	}
	for _, m := range ms {
		mf := peel(m.Type)
		at := off + int(m.Offset.Bytes())
		if m.Name == "" {
			if sub, subUnion, ok := members(mf.t); ok {
				if err := v.decodeMembers(sub, subUnion, b, at, depth+1, h, path); err != nil {
					return err
				}
			}
			continue
		}
		var item Value
		var err error
		if m.BitfieldSize > 0 {
			item, err = decodeBitfield(mf, m, b, off)
		} else {
			size, serr := btf.Sizeof(m.Type)
			if serr != nil || at+size > len(b) {
				return fmt.Errorf("%s: the BTF is broken: no size, or beyond the value's end", m.Name)
			}
			item, err = decode(m.Type, b[at:at+size], depth+1, h, joinPath(path, m.Name))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		v.names = append(v.names, m.Name)
		v.items = append(v.items, item)
	}
	return nil
}

// unionShown picks the members of a union to show, b being its bytes: the
// one the topology wrote (given), else the one that covers the non-zero
// bytes and is smallest, else all of them. Writing back a member shown alone
// gives the same bytes.
func unionShown(ms []btf.Member, b []byte, given string) []btf.Member {
	for _, m := range ms {
		if given != "" && slices.Contains(memberNames([]btf.Member{m}), given) {
			return []btf.Member{m}
		}
	}
	sizes := make([]int, len(ms))
	for i, m := range ms {
		bits := int(m.BitfieldSize)
		if bits == 0 {
			size, _ := btf.Sizeof(m.Type)
			bits = size * 8
		}
		sizes[i] = (int(m.Offset) + bits + 7) / 8
	}
	used := 0
	for i, c := range b[:min(slices.Max(sizes), len(b))] {
		if c != 0 {
			used = i + 1
		}
	}
	var fit []btf.Member
	least := -1
	for i, m := range ms {
		bytes := sizes[i]
		switch {
		case bytes < used:
		case least < 0 || bytes < least:
			fit, least = []btf.Member{m}, bytes
		case bytes == least:
			fit = append(fit, m)
		}
	}
	if len(fit) == 1 {
		return fit
	}
	return ms
}

func decodeBitfield(f field, m btf.Member, b []byte, off int) (Value, error) {
	base, bits := off*8+int(m.Offset), int(m.BitfieldSize)
	if base+bits > len(b)*8 {
		return Value{}, errors.New("the BTF is broken: the bitfield lies beyond the value's end")
	}
	u := new(big.Int)
	for i := range bits {
		p := base + i
		u.SetBit(u, i, uint(b[p/8]>>(p%8)&1))
	}
	return number(f, fromTwos(u, bits, isSigned(f))), nil
}

// String renders v on one line as YAML flow: {lb_vip: 192.168.10.1, src_mac: 02:aa:bb:cc:dd:ee}.
func (v Value) String() string {
	var sb strings.Builder
	v.write(&sb, yamlFlow)
	return sb.String()
}

// notation is how a Value is written out: YAML flow or JSON, which differ
// only in how strings and member names are quoted and items separated.
type notation struct {
	str  func(string) string // a string value
	name func(string) string // a struct member's name, with its colon
	sep  string
	// tags: BETag is written before the numbers the topology wrote so.
	tags bool
}

var (
	yamlFlow = notation{str: yamlString, name: func(n string) string { return n + ": " }, sep: ", ", tags: true}
	jsonText = notation{str: jsonString, name: func(n string) string { return jsonString(n) + ":" }, sep: ","}
)

func jsonString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

func (v Value) write(sb *strings.Builder, nt notation) {
	switch v.kind {
	case kindString:
		sb.WriteString(nt.str(v.text))
	case kindList, kindStruct:
		open, end := "[", "]"
		if v.kind == kindStruct {
			open, end = "{", "}"
		}
		sb.WriteString(open)
		for i, item := range v.items {
			if i > 0 {
				sb.WriteString(nt.sep)
			}
			if v.kind == kindStruct {
				sb.WriteString(nt.name(v.names[i]))
			}
			item.write(sb, nt)
		}
		sb.WriteString(end)
	default:
		if v.be && nt.tags {
			sb.WriteString(BETag + " ")
		}
		sb.WriteString(v.text)
	}
}

// yamlString writes s plain where YAML flow reads it back as the same string, else quoted: text
// such as "" , "a, b", "123" or "::1" must not turn into something else.
func yamlString(s string) string {
	plain := s != "" && !strings.HasPrefix(s, ":") && !strings.HasSuffix(s, ":") &&
		!strings.ContainsFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.:/-", r))
		})
	if plain {
		var n yaml.Node
		plain = yaml.Unmarshal([]byte(s), &n) == nil && len(n.Content) == 1 && n.Content[0].Tag == "!!str" && n.Content[0].Value == s
	}
	if plain {
		return s
	}
	// Printable ASCII only reaches here (text() and the address formatters make nothing else), and
	// for it Go's quoting is YAML's double-quoted style.
	return fmt.Sprintf("%q", s)
}

// MarshalJSON renders v with struct members in BTF order.
func (v Value) MarshalJSON() ([]byte, error) {
	var sb strings.Builder
	v.write(&sb, jsonText)
	return []byte(sb.String()), nil
}
