package btfvalue

import (
	"regexp"

	"github.com/cilium/ebpf/btf"
	"gopkg.in/yaml.v3"
)

// BETag marks an integer written in network byte order, whatever its C
// type says: `port: !be 50007` fills a plain __u16 that holds a port as
// the wire has it (Katran's vip_definition.port), which would otherwise
// have to be written pre-swapped (0x57c3).
const BETag = "!be"

// Hints are how a map's values were written in the topology, so that they
// read back the same way: the integer fields given in network byte order
// (BETag), and the member each union was given by. A nil *Hints records
// nothing and knows nothing.
type Hints struct {
	be     map[string]bool
	member map[string]string
}

// NewHints returns empty hints, to fill by Encode.
func NewHints() *Hints { return &Hints{be: map[string]bool{}, member: map[string]string{}} }

// Encode is the package's Encode that also records into h how n wrote
// the value.
func (h *Hints) Encode(t btf.Type, n *yaml.Node, r Resolver) ([]byte, error) {
	return encode(t, n, r, h)
}

// Decode is the package's Decode that prints fields as h says the
// topology wrote them.
func (h *Hints) Decode(t btf.Type, b []byte) (Value, error) {
	return decodeValue(t, b, h)
}

var index = regexp.MustCompile(`\[\d+\]`)

// hintKey is where a hint about the field at path is kept: every element
// of an array is written alike.
func hintKey(path string) string { return index.ReplaceAllString(path, "[]") }

// unionKey names a union: by its path, and its first member's name for
// an anonymous one, which shares its parent's path (C gives the members of
// two anonymous unions of a struct different names).
func unionKey(path string, ms []btf.Member) string {
	names := memberNames(ms)
	if len(names) == 0 {
		return hintKey(path)
	}
	return hintKey(path) + "{" + names[0] + "}"
}

func (h *Hints) setBE(path string) {
	if h != nil {
		h.be[hintKey(path)] = true
	}
}

func (h *Hints) isBE(path string) bool { return h != nil && h.be[hintKey(path)] }

// mixed stands for a union written by different members in different
// entries: each entry is then shown by the member that fits it.
const mixed = "\x00"

func (h *Hints) setMember(path string, ms []btf.Member, name string) {
	if h == nil {
		return
	}
	key := unionKey(path, ms)
	if was, ok := h.member[key]; ok && was != name {
		name = mixed
	}
	h.member[key] = name
}

func (h *Hints) memberOf(path string, ms []btf.Member) string {
	if h == nil || h.member[unionKey(path, ms)] == mixed {
		return ""
	}
	return h.member[unionKey(path, ms)]
}
