package btfvalue

import (
	"bytes"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"

	"github.com/cilium/ebpf/btf"
	"gopkg.in/yaml.v3"
)

// Encode returns the bytes of a value of type t written as YAML in n: integers (decimal, 0x hex,
// negative for signed types; `!be N` in network byte order), IP addresses, MACs, NODE:IFACE references (looked up through r; nil
// forbids them), enum names, booleans, strings for char arrays, lists for arrays and mappings for
// structs and unions. Members left out, the rest of a short list and padding are zero. Errors are
// *Error, or Errors when the value has several mistakes (each member and element is checked).
func Encode(t btf.Type, n *yaml.Node, r Resolver) ([]byte, error) {
	return encode(t, n, r, nil)
}

func encode(t btf.Type, n *yaml.Node, r Resolver, h *Hints) ([]byte, error) {
	if n == nil {
		return nil, &Error{Msg: "no value given"}
	}
	size, err := btf.Sizeof(t)
	if err != nil {
		return nil, errorf(deref(n), "", "type %v has no size: %v", t, err)
	}
	e := encoder{buf: make([]byte, size), r: r, hints: h}
	e.note(e.value(t, n, 0, "", 0))
	switch len(e.errs) {
	case 0:
		return e.buf, nil
	case 1:
		return nil, e.errs[0]
	}
	return nil, e.errs
}

// Errors are every mistake in one value, in the order they are written:
// Encode reports all of them, not the first.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// EncodeMask is Encode that also returns which bits of the value the YAML names: a mask with the
// bits of every field given set, and those of fields left out, padding and unnamed bitfields
// clear. Comparing only those bits checks what a test expects and nothing more.
func EncodeMask(t btf.Type, n *yaml.Node, r Resolver) (value, mask []byte, err error) {
	if n == nil {
		return nil, nil, &Error{Msg: "no value given"}
	}
	n = deref(n)
	size, err := btf.Sizeof(t)
	if err != nil {
		return nil, nil, errorf(n, "", "type %v has no size: %v", t, err)
	}
	e := encoder{buf: make([]byte, size), mask: make([]byte, size), r: r}
	if err := e.value(t, n, 0, "", 0); err != nil {
		return nil, nil, err
	}
	return e.buf, e.mask, nil
}

// EncodeString is Encode for a value written on one line, as YAML flow ("{lb_vip: 10.0.0.1}"):
// the form `dsrlab map set` takes and Value.String prints.
func EncodeString(t btf.Type, s string, r Resolver) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("not a YAML value: %v", err)}
	}
	if doc.Kind == 0 {
		return nil, &Error{Line: 1, Column: 1, Msg: "no value given"}
	}
	return Encode(t, &doc, r)
}

func errorf(n *yaml.Node, path, format string, args ...any) *Error {
	return &Error{Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// deref follows documents and aliases to the node that holds the value.
func deref(n *yaml.Node) *yaml.Node {
	for range maxDepth {
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		case n.Kind == yaml.AliasNode && n.Alias != nil:
			n = n.Alias
		default:
			return n
		}
	}
	return n
}

// shape names what n is, for "wrong shape" messages.
func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

type encoder struct {
	buf []byte
	// mask, when not nil, gets the bits of each field written set (EncodeMask).
	mask  []byte
	r     Resolver
	hints *Hints
	// errs are the mistakes found so far: a member or element that
	// fails is noted, and the rest of the value is still checked.
	errs Errors
}

// given marks bytes off..off+size as named by the YAML.
func (e *encoder) given(off, size int) {
	if e.mask != nil {
		for i := off; i < off+size; i++ {
			e.mask[i] = 0xff
		}
	}
}

func (e *encoder) note(err error) {
	switch err := err.(type) {
	case nil:
	case *Error:
		e.errs = append(e.errs, err)
	default:
		e.errs = append(e.errs, &Error{Msg: err.Error()})
	}
}

// tagged reports whether n carries BETag, and refuses any other tag of
// the user's (YAML's own, !!str and the like, are the parser's).
func tagged(n *yaml.Node, path string) (bool, error) {
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return false, nil
	}
	if n.Tag != BETag {
		return false, errorf(n, path, "unknown tag %s: the one tag is %s before an integer, for network byte order (port: %s 50007)", n.Tag, BETag, BETag)
	}
	return true, nil
}

func (e *encoder) value(t btf.Type, n *yaml.Node, off int, path string, depth int) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil && depth <= maxDepth {
		before := len(e.errs)
		err := atAlias(n, e.value(t, n.Alias, off, path, depth+1))
		for i := before; i < len(e.errs); i++ {
			e.errs[i] = atAlias(n, e.errs[i]).(*Error)
		}
		return err
	}
	n = deref(n)
	f := peel(t)
	if depth > maxDepth {
		return errorf(n, path, "%s nests deeper than %d levels", f.name, maxDepth)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return errorf(n, path, "no value given for %s (write 0 for zero)", f.name)
	}
	be, err := tagged(n, path)
	if err != nil {
		return err
	}
	size, err := btf.Sizeof(f.t)
	if err != nil || off+size > len(e.buf) {
		return errorf(n, path, "the BTF of %s is broken: it has no size or lies beyond the value's end", f.name)
	}
	if _, isPointer := f.t.(*btf.Pointer); be && (isPointer || !isInteger(f.t)) {
		return errorf(n, path, "%s goes on an integer field; %s is not one", BETag, f.name)
	}
	switch u := f.t.(type) {
	case *btf.Int, *btf.Enum, *btf.Pointer:
		e.given(off, size)
		dst := e.buf[off : off+size]
		if n.Kind == yaml.ScalarNode && addrSize(f) != 0 {
			if _, isNum := parseInt(n.Value); !isNum {
				return e.address(f, n, path, dst)
			}
		}
		v, err := scalar(f, n, path, size*8)
		if err != nil {
			return err
		}
		if be {
			e.hints.setBE(path)
		}
		putInt(dst, v, f.be || be)
		return nil
	case *btf.Array:
		return e.array(f, u, n, off, path, depth)
	case *btf.Struct, *btf.Union:
		return e.composite(f, n, off, path, depth)
	}
	return errorf(n, path, "cannot write %s: fields of this kind are not supported", f.name)
}

// isInteger: an Int or an Enum, what BETag goes on.
func isInteger(t btf.Type) bool {
	switch t.(type) {
	case *btf.Int, *btf.Enum:
		return true
	}
	return false
}

// scalar parses n as an integer-like field (Int, Enum, Pointer) of bits bits: a number, an enum
// name, or a boolean. The result is in range, negative only for signed fields.
func scalar(f field, n *yaml.Node, path string, bits int) (*big.Int, error) {
	if n.Kind != yaml.ScalarNode {
		return nil, errorf(n, path, "%s takes a single value, not %s", f.name, shape(n))
	}
	signed := false
	switch u := f.t.(type) {
	case *btf.Int:
		if u.Encoding == btf.Bool {
			switch strings.ToLower(n.Value) {
			case "true", "1":
				return big.NewInt(1), nil
			case "false", "0":
				return big.NewInt(0), nil
			}
			return nil, errorf(n, path, "%s takes true or false, not %q", f.name, n.Value)
		}
		signed = u.Encoding == btf.Signed
	}
	v, ok := parseInt(n.Value)
	if e, isEnum := f.t.(*btf.Enum); isEnum {
		signed = e.Signed
		for _, ev := range e.Values {
			if ev.Name == n.Value {
				// By name too the value must fit: a bitfield may be
				// narrower than the enum.
				v, ok = new(big.Int).SetUint64(ev.Value), true
				if signed {
					v = big.NewInt(int64(ev.Value))
				}
			}
		}
	}
	if !ok {
		return nil, errorf(n, path, "%q is not %s", n.Value, wants(f))
	}
	lo, hi := intRange(bits, signed)
	if v.Cmp(lo) < 0 || v.Cmp(hi) > 0 {
		sign := "unsigned"
		if signed {
			sign = "signed"
		}
		return nil, errorf(n, path, "%s does not fit %s (%s %d-bit: %v..%v)", n.Value, f.name, sign, bits, lo, hi)
	}
	return v, nil
}

// wants says what an integer-like field takes, for the message about a value it does not.
func wants(f field) string {
	var names []string
	if en, ok := f.t.(*btf.Enum); ok {
		for _, ev := range en.Values {
			names = append(names, ev.Name)
		}
		return fmt.Sprintf("a value of %s (%s) or a number", f.name, strings.Join(names, ", "))
	}
	switch addrSize(f) {
	case 4:
		return fmt.Sprintf("a number, an IPv4 address or a NODE:IFACE reference for %s", f.name)
	case 16:
		return fmt.Sprintf("a number, an IPv6 address or a NODE:IFACE reference for %s", f.name)
	}
	if i, ok := f.t.(*btf.Int); ok && i.Size > 1 && !f.be {
		return fmt.Sprintf("a number (decimal or 0x hex; %s N for network byte order) for %s", BETag, f.name)
	}
	return fmt.Sprintf("a number (decimal or 0x hex) for %s", f.name)
}

// parseInt reads decimal or 0x hex, optionally negative. Not strconv's base 0: a leading zero
// must not turn "010" into octal 8.
func parseInt(s string) (*big.Int, bool) {
	body, neg := strings.CutPrefix(s, "-")
	base := 10
	if h, ok := strings.CutPrefix(body, "0x"); ok {
		body, base = h, 16
	} else if h, ok := strings.CutPrefix(body, "0X"); ok {
		body, base = h, 16
	}
	if body == "" || strings.ContainsAny(body, "+-_") {
		return nil, false
	}
	v, ok := new(big.Int).SetString(body, base)
	if !ok {
		return nil, false
	}
	if neg {
		v.Neg(v)
	}
	return v, true
}

func intRange(bits int, signed bool) (lo, hi *big.Int) {
	one := big.NewInt(1)
	if !signed {
		return big.NewInt(0), new(big.Int).Sub(new(big.Int).Lsh(one, uint(bits)), one)
	}
	half := new(big.Int).Lsh(one, uint(bits-1))
	return new(big.Int).Neg(half), new(big.Int).Sub(half, one)
}

// twos is v as the unsigned two's-complement pattern of bits bits.
func twos(v *big.Int, bits int) *big.Int {
	if v.Sign() >= 0 {
		return v
	}
	return new(big.Int).Add(v, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
}

// putInt stores an in-range v into dst, in network byte order if be, else little-endian.
func putInt(dst []byte, v *big.Int, be bool) {
	twos(v, len(dst)*8).FillBytes(dst)
	if !be {
		for i, j := 0, len(dst)-1; i < j; i, j = i+1, j-1 {
			dst[i], dst[j] = dst[j], dst[i]
		}
	}
}

// address writes an IP, MAC or NODE:IFACE literal into dst, whose size addrSize gave.
func (e *encoder) address(f field, n *yaml.Node, path string, dst []byte) error {
	s := n.Value
	switch len(dst) {
	case 4, 16:
		if a, err := netip.ParseAddr(s); err == nil {
			switch {
			case len(dst) == 4 && !a.Is4():
				return errorf(n, path, "%s is an IPv6 address; %s holds 4 bytes, an IPv4 address", s, f.name)
			case len(dst) == 16 && a.Is4():
				return errorf(n, path, "%s is an IPv4 address; %s holds 16 bytes, an IPv6 address (write ::ffff:%s for IPv4-mapped)", s, f.name, s)
			}
			copy(dst, a.AsSlice())
			return nil
		}
	case 6:
		if mac, err := net.ParseMAC(s); err == nil && len(mac) == 6 {
			copy(dst, mac)
			return nil
		}
	}
	node, iface, ok := strings.Cut(s, ":")
	if !ok || node == "" || iface == "" || strings.ContainsAny(iface, ": \t") {
		return errorf(n, path, "%q is not %s", s, addrWants(f, len(dst)))
	}
	if e.r == nil {
		return errorf(n, path, "%s is a NODE:IFACE reference, and references are not allowed here (there is no lab to resolve them)", s)
	}
	b, err := e.r(s, len(dst))
	if err != nil {
		return errorf(n, path, "%s: %v", s, err)
	}
	if len(b) != len(dst) {
		return errorf(n, path, "%s resolved to %d bytes; %s holds %d", s, len(b), f.name, len(dst))
	}
	copy(dst, b)
	return nil
}

func addrWants(f field, size int) string {
	if _, isInt := f.t.(*btf.Int); isInt {
		return wants(f)
	}
	kind := map[int]string{4: "an IPv4 address", 6: "a MAC (02:aa:bb:cc:dd:ee)", 16: "an IPv6 address"}[size]
	return fmt.Sprintf("%s or a NODE:IFACE reference for %s", kind, f.name)
}

func (e *encoder) array(f field, a *btf.Array, n *yaml.Node, off int, path string, depth int) error {
	elemSize, err := btf.Sizeof(a.Type)
	if err != nil {
		return errorf(n, path, "%s: element has no size: %v", f.name, err)
	}
	if n.Kind == yaml.ScalarNode {
		if isChar(peel(a.Type)) {
			if len(n.Value) > int(a.Nelems) {
				return errorf(n, path, "%q is %d bytes; %s holds %d", n.Value, len(n.Value), f.name, a.Nelems)
			}
			copy(e.buf[off:], n.Value)
			e.given(off, int(a.Nelems))
			return nil
		}
		if size := addrSize(f); size != 0 {
			e.given(off, size)
			return e.address(f, n, path, e.buf[off:off+size])
		}
	}
	if n.Kind != yaml.SequenceNode {
		return errorf(n, path, "%s takes a list of up to %d elements, not %s", f.name, a.Nelems, shape(n))
	}
	if len(n.Content) > int(a.Nelems) {
		return errorf(n.Content[a.Nelems], fmt.Sprintf("%s[%d]", path, a.Nelems),
			"too many elements: %s holds %d, the list has %d", f.name, a.Nelems, len(n.Content))
	}
	for i, c := range n.Content {
		e.note(e.value(a.Type, c, off+i*elemSize, fmt.Sprintf("%s[%d]", path, i), depth+1))
	}
	return nil
}

// entry is one key: value pair of a mapping.
type entry struct{ key, val *yaml.Node }

// mapping is a YAML mapping being written into a struct or union: its entries by name, and which of
// them found their member.
type mapping struct {
	n     *yaml.Node
	path  string
	given map[string]entry
	used  map[string]bool
}

func (e *encoder) composite(f field, n *yaml.Node, off int, path string, depth int) error {
	ms, union, _ := members(f.t)
	names := memberNames(ms)
	if n.Kind != yaml.MappingNode {
		what := "its fields"
		if union {
			what = "exactly one of its members"
		}
		return errorf(n, path, "%s takes a mapping of %s (%s), not %s", f.name, what, strings.Join(names, ", "), shape(n))
	}
	mp := mapping{n: n, path: path, given: make(map[string]entry), used: make(map[string]bool)}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return errorf(k, path, "%s: a field name must be a plain name, not %s", f.name, shape(k))
		}
		if _, dup := mp.given[k.Value]; dup {
			return errorf(k, joinPath(path, k.Value), "given twice")
		}
		mp.given[k.Value] = entry{k, v}
	}
	if err := e.members(&mp, f, ms, union, off, depth); err != nil {
		return err
	}
	for i := 0; i < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		if !mp.used[k.Value] {
			e.note(errorf(k, joinPath(path, k.Value), "%s has no field %q; its fields are: %s", f.name, k.Value, strings.Join(names, ", ")))
		}
	}
	if union && len(mp.used) == 0 {
		return errorf(n, path, "%s takes exactly one of: %s", f.name, strings.Join(names, ", "))
	}
	return nil
}

// members writes the entries of mp that name members of ms, the members of f at byte off.
// Anonymous structs and unions take their members' names from the same mapping, as in C.
func (e *encoder) members(mp *mapping, f field, ms []btf.Member, union bool, off, depth int) error {
	if depth > maxDepth {
		return errorf(mp.n, mp.path, "%s nests deeper than %d levels", f.name, maxDepth)
	}
	// A union takes one member, or several that agree on its bytes: how
	// Decode shows a union whose members all fit alike.
	var names []string
	if union {
		var chosen []btf.Member
		for _, m := range ms {
			if name, ok := givenName(m, mp.given); ok {
				chosen = append(chosen, m)
				names = append(names, name)
			}
		}
		if len(chosen) > 0 {
			e.hints.setMember(mp.path, ms, names[0])
		}
		ms = chosen
	}
	for i, m := range ms {
		if i > 0 && union {
			before := bytes.Clone(e.buf)
			if err := e.members(mp, f, ms[i:i+1], false, off, depth); err != nil {
				return err
			}
			if !bytes.Equal(before, e.buf) {
				return errorf(mp.given[names[i]].key, joinPath(mp.path, names[i]), "%s takes one member, and %s and %s give it different bytes", f.name, names[0], names[i])
			}
			continue
		}
		if m.Name == "" {
			mf := peel(m.Type)
			if sub, subUnion, ok := members(mf.t); ok {
				if err := e.members(mp, mf, sub, subUnion, off+int(m.Offset.Bytes()), depth+1); err != nil {
					return err
				}
			}
			continue
		}
		g, ok := mp.given[m.Name]
		if !ok {
			continue
		}
		mp.used[m.Name] = true
		mpath := joinPath(mp.path, m.Name)
		if m.BitfieldSize > 0 {
			e.note(e.bitfield(m, g.val, off, mpath))
			continue
		}
		e.note(e.value(m.Type, g.val, off+int(m.Offset.Bytes()), mpath, depth+1))
	}
	return nil
}

// givenName returns the first name of member m (or of its members, if it is anonymous) that the
// mapping gives.
func givenName(m btf.Member, given map[string]entry) (string, bool) {
	for _, name := range memberNames([]btf.Member{m}) {
		if _, ok := given[name]; ok {
			return name, true
		}
	}
	return "", false
}

// atAlias places an error in the value of an alias where the alias is
// used: the anchor's place is one of many uses, and maybe valid at the
// others.
func atAlias(alias *yaml.Node, err error) error {
	be, ok := err.(*Error)
	if !ok || be.Line == alias.Line && be.Column == alias.Column {
		return err
	}
	c := *be
	c.Line, c.Column = alias.Line, alias.Column
	c.Msg = fmt.Sprintf("%s (in *%s, anchored at line %d)", be.Msg, alias.Value, alias.Alias.Line)
	return &c
}

// bitfield writes member m, a bitfield of the struct at byte off.
func (e *encoder) bitfield(m btf.Member, n *yaml.Node, off int, path string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return atAlias(n, e.bitfield(m, deref(n), off, path))
	}
	n = deref(n)
	f := peel(m.Type)
	if be, err := tagged(n, path); err != nil || be {
		if err == nil {
			err = errorf(n, path, "%s does not go on a bitfield", BETag)
		}
		return err
	}
	if f.be {
		return errorf(n, path, "%s: bitfields of network-order types are not supported", f.name)
	}
	v, err := scalar(f, n, path, int(m.BitfieldSize))
	if err != nil {
		return err
	}
	u := twos(v, int(m.BitfieldSize))
	base := off*8 + int(m.Offset)
	if base+int(m.BitfieldSize) > len(e.buf)*8 {
		return errorf(n, path, "the BTF of %s is broken: the bitfield lies beyond the value's end", f.name)
	}
	for i := range int(m.BitfieldSize) {
		p := base + i
		if u.Bit(i) == 1 {
			e.buf[p/8] |= 1 << (p % 8)
		}
		if e.mask != nil {
			e.mask[p/8] |= 1 << (p % 8)
		}
	}
	return nil
}
