// Package btfvalue writes BPF map keys and values from YAML by the map's BTF, and reads them back.
//
// A user's own XDP program declares its maps in C; the topology YAML fills them by field name
// ("real_server_ip: real:eth0") and `dsrlab map` prints them the same way. The BTF says where each
// field lives and what it is; this package adds the meaning C types carry only by convention:
// a __be32 is in network byte order and holds an IPv4 address, a 6-byte unsigned char array is a
// MAC, a char array holds text.
//
// Byte order: the values are for bpfel objects (the only ones dsrlab builds and loads), so host-order
// fields are little-endian, and bitfields are numbered from the least significant bit of each byte.
package btfvalue

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// Resolver turns a NODE:IFACE reference into the bytes for a field of size bytes (4: IPv4 address,
// 16: IPv6 address, 6: MAC), or an error saying what it names nothing / has no address of that family.
type Resolver func(ref string, size int) ([]byte, error)

// Error is a value that cannot be encoded, at its place in the YAML.
type Error struct {
	Line, Column int
	// Path names the field from the top of the encoded type: "cfg.dst_mac[2]", or "" for the
	// value itself. Within puts it under the caller's name for the value.
	Path string
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%d:%d: %s: %s", e.Line, e.Column, e.Path, e.Msg)
}

// Within returns a copy of e whose path starts with prefix: Within("value") of "cfg.x" is "value.cfg.x".
func (e *Error) Within(prefix string) *Error {
	c := *e
	c.Path = joinPath(prefix, e.Path)
	return &c
}

func joinPath(prefix, p string) string {
	switch {
	case p == "":
		return prefix
	case prefix == "" || strings.HasPrefix(p, "["):
		return prefix + p
	default:
		return prefix + "." + p
	}
}

// maxDepth bounds typedef chains and nesting, so a malformed (cyclic) BTF cannot hang us.
const maxDepth = 32

// field is a type with qualifiers and typedefs peeled off, keeping what the peeled names said.
type field struct {
	t btf.Type // *btf.Int, *btf.Enum, *btf.Struct, *btf.Union, *btf.Array, *btf.Pointer, or unsupported
	// name is the outermost name the C source used (a typedef's, or the type's own), for messages.
	name string
	// be: a __be16/__be32/__be64 typedef lies on the way, so the integer is in network byte order.
	be bool
}

func peel(t btf.Type) field {
	var f field
	for range maxDepth {
		t = btf.QualifiedType(t)
		td, ok := t.(*btf.Typedef)
		if !ok {
			break
		}
		if f.name == "" {
			f.name = td.Name
		}
		switch td.Name {
		case "__be16", "__be32", "__be64":
			f.be = true
		}
		t = td.Type
	}
	f.t = t
	if i, ok := t.(*btf.Int); !ok || i.Size < 2 {
		f.be = false
	}
	if f.name == "" {
		f.name = typeName(t)
	}
	return f
}

// typeName is how a C programmer would name t in a message.
func typeName(t btf.Type) string {
	switch u := t.(type) {
	case *btf.Struct:
		return strings.TrimSpace("struct " + u.Name)
	case *btf.Union:
		return strings.TrimSpace("union " + u.Name)
	case *btf.Enum:
		return strings.TrimSpace("enum " + u.Name)
	case *btf.Array:
		return fmt.Sprintf("%s[%d]", peel(u.Type).name, u.Nelems)
	case *btf.Pointer:
		return "pointer"
	case nil:
		return "<nil>"
	}
	if n := t.TypeName(); n != "" {
		return n
	}
	return fmt.Sprintf("%T", t)
}

// isChar reports whether f is a C char, whose arrays hold text. unsigned char and __u8 are bytes:
// clang marks neither with the char encoding, so the name tells them apart.
func isChar(f field) bool {
	i, ok := f.t.(*btf.Int)
	return ok && i.Size == 1 && (i.Encoding == btf.Char || i.Name == "char")
}

// addrSize is the size of the address an IP, MAC or NODE:IFACE literal gives a field: 4 or 16
// (IP address), 6 (MAC), or 0 if the field takes none.
func addrSize(f field) int {
	switch u := f.t.(type) {
	case *btf.Int:
		if u.Encoding != btf.Bool && (u.Size == 4 || u.Size == 16) {
			return int(u.Size)
		}
	case *btf.Array:
		ef := peel(u.Type)
		ei, ok := ef.t.(*btf.Int)
		if !ok || ei.Encoding == btf.Bool || isChar(ef) {
			return 0
		}
		switch total := int(ei.Size) * int(u.Nelems); {
		case total == 4 || total == 16:
			return total
		case total == 6 && ei.Size == 1:
			return 6
		}
	}
	return 0
}

// shownAs is the size of the address a field is printed as (see addrSize), or 0 to print it as
// numbers. Narrower than addrSize: a host-order __u32 holding an IP is still printed as a number,
// since nothing says it holds one.
func shownAs(f field) int {
	switch u := f.t.(type) {
	case *btf.Int:
		if f.be && u.Size == 4 {
			return 4
		}
	case *btf.Array:
		ef := peel(u.Type)
		ei, ok := ef.t.(*btf.Int)
		if !ok || addrSize(f) == 0 {
			return 0
		}
		if total := int(ei.Size) * int(u.Nelems); ei.Size == 1 && (total == 6 || total == 16) ||
			ef.be && total == 16 {
			return total
		}
	}
	return 0
}

// memberNames lists the names a mapping may use for ms: members of anonymous structs and unions
// count as the parent's, as in C.
func memberNames(ms []btf.Member) []string {
	return appendNames(nil, ms, 0)
}

func appendNames(names []string, ms []btf.Member, depth int) []string {
	if depth > maxDepth {
		return names
	}
	for _, m := range ms {
		if m.Name != "" {
			names = append(names, m.Name)
			continue
		}
		// Unnamed bitfield padding has no members, so it adds no name.
		sub, _, _ := members(peel(m.Type).t)
		names = appendNames(names, sub, depth+1)
	}
	return names
}

// members returns the members of a struct or union, and which of the two it is.
func members(t btf.Type) (ms []btf.Member, union, ok bool) {
	switch c := t.(type) {
	case *btf.Struct:
		return c.Members, false, true
	case *btf.Union:
		return c.Members, true, true
	}
	return nil, false, false
}

// TypeName is how the C source names t: its typedef's name (__be32), else
// "struct x", "__u8[6]" and the like.
func TypeName(t btf.Type) string { return peel(t).name }
