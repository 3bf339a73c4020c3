package topology

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a topology file.
type Error struct {
	File   string
	Line   int // 0 when the problem has no position (an empty file)
	Column int // 0 when only the line is known (YAML syntax errors)
	Field  string
	Msg    string
}

// Error formats e as "file:line:col: field: msg", leaving out the parts
// that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a topology file, sorted by position.
type ErrorList []*Error

func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sorted sorts l by position and drops repeats, which yaml.v3 produces
// when an alias makes it decode one bad value several times.
func (l ErrorList) sorted() ErrorList {
	slices.SortStableFunc(l, compareErrors)
	return slices.CompactFunc(l, func(a, b *Error) bool { return compareErrors(a, b) == 0 })
}

func compareErrors(a, b *Error) int {
	return cmp.Or(
		cmp.Compare(a.Line, b.Line),
		cmp.Compare(a.Column, b.Column),
		cmp.Compare(a.Field, b.Field),
		cmp.Compare(a.Msg, b.Msg),
	)
}

// fieldPath addresses a value in the document: each element is a mapping
// key (string) or a list index (int). Keys are kept whole rather than joined
// with dots because sysctl names and invalid node names may contain dots.
type fieldPath []any

func (p fieldPath) key(k string) fieldPath { return append(slices.Clip(p), k) }
func (p fieldPath) index(i int) fieldPath  { return append(slices.Clip(p), i) }

func (p fieldPath) String() string {
	var b strings.Builder
	for _, e := range p {
		switch e := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", e)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			// A key is the user's text: quoted when it could pass for
			// more than one key, or break the one-line error format.
			if e == "" || strings.ContainsFunc(e, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '[' }) {
				e = strconv.Quote(e)
			}
			b.WriteString(e)
		}
	}
	return b.String()
}

// document is the YAML node tree of a topology file, kept to turn field
// paths into line and column numbers.
type document struct {
	root *yaml.Node // the top-level value; nil for an empty file
}

func newDocument(doc *yaml.Node) document {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return document{root: doc.Content[0]}
	}
	return document{}
}

// position returns where the value at p is. When p does not exist (a
// missing field), it falls back to the nearest parent that does. For a
// value reached through a mapping key, atKey selects the key's position,
// which is where errors about the key itself (a bad node name) belong; a
// missing field is always reported at its parent's key, the line a reader
// would edit.
func (d document) position(p fieldPath, atKey bool) (line, col int) {
	val, key, found := d.descend(p)
	switch {
	case key != nil && (atKey || !found):
		return key.Line, key.Column
	case val != nil:
		return val.Line, val.Column
	}
	return 0, 0
}

// lookup returns the value at p and, if it sits in a mapping, its key; nil
// when p does not exist.
func (d document) lookup(p fieldPath) (val, key *yaml.Node) {
	if val, key, found := d.descend(p); found {
		return val, key
	}
	return nil, nil
}

// descend follows p as far as the document goes, returning the deepest
// value reached, its key, and whether all of p was found.
func (d document) descend(p fieldPath) (val, key *yaml.Node, found bool) {
	val = d.root
	if val == nil {
		return nil, nil, false
	}
	for _, e := range p {
		next, nextKey := child(val, e)
		if next == nil {
			return val, key, false
		}
		val, key = next, nextKey
	}
	return val, key, true
}

// child returns the value (and, in a mapping, the key) at path element e.
func child(n *yaml.Node, e any) (val, key *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch e := e.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil, nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == e {
				return n.Content[i+1], n.Content[i]
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && e >= 0 && e < len(n.Content) {
			return n.Content[e], nil
		}
	}
	return nil, nil
}

// walk calls fn for every value in the document, with the key it sits
// under (nil for list items and the root) and its path.
func (d document) walk(fn func(key, val *yaml.Node, p fieldPath) bool) {
	var visit func(key, val *yaml.Node, p fieldPath) bool
	visit = func(key, val *yaml.Node, p fieldPath) bool {
		if !fn(key, val, p) {
			return false
		}
		switch val.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(val.Content); i += 2 {
				if !visit(val.Content[i], val.Content[i+1], p.key(val.Content[i].Value)) {
					return false
				}
			}
		case yaml.SequenceNode:
			for i, item := range val.Content {
				if !visit(nil, item, p.index(i)) {
					return false
				}
			}
		}
		return true
	}
	if d.root != nil {
		visit(nil, d.root, nil)
	}
}

var (
	syntaxErrRE    = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	typeErrLineRE  = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	repeatedKeyRE  = regexp.MustCompile(`^(?:field (\S+) already set in type \S+|mapping key "(.*)" already defined at line \d+)$`)
	cannotDecodeRE = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `([^`]*)`)? into (\\S+)$")
)

// syntaxError turns a yaml.v3 parse error into an Error. yaml.v3 gives the
// line (sometimes the line of the enclosing block) but never the column.
func syntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := syntaxErrRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: m[2]}
	}
	return &Error{File: file, Msg: msg}
}

// decodeErrors turns the messages of a yaml.TypeError into Errors. The
// messages only carry a line, so the node they are about is searched for on
// that line to recover its column and field path.
func decodeErrors(file string, d document, msgs []string) ErrorList {
	var errs ErrorList
	for _, raw := range msgs {
		m := typeErrLineRE.FindStringSubmatch(raw)
		if m == nil {
			errs = append(errs, &Error{File: file, Msg: raw})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		e := &Error{File: file, Line: line, Msg: m[2]}
		if f := unknownFieldRE.FindStringSubmatch(m[2]); f != nil {
			e.Msg = fmt.Sprintf("unknown field %q", f[1])
			d.locateKey(e, f[1])
		} else if f := repeatedKeyRE.FindStringSubmatch(m[2]); f != nil {
			e.Msg = fmt.Sprintf("%q is set more than once", f[1]+f[2])
			d.locateKey(e, f[1]+f[2])
		} else if f := cannotDecodeRE.FindStringSubmatch(m[2]); f != nil {
			d.locateValue(e, f[1], f[2], f[3])
		}
		errs = append(errs, e)
	}
	return errs
}

// locateKey fills in the position and path of the mapping key name on e's
// line. The last match is taken because a repeated key is reported at its
// second occurrence.
func (d document) locateKey(e *Error, name string) {
	d.walk(func(key, _ *yaml.Node, p fieldPath) bool {
		if key != nil && key.Line == e.Line && key.Value == name {
			e.Column, e.Field = key.Column, p.String()
		}
		return true
	})
}

// locateValue fills in the position and path of the value of YAML type
// tag on e's line that yaml.v3 quoted as text, and rewrites the message in
// the topology's terms. yaml.v3 shortens text longer than 10 characters to
// its first 7 and "...".
func (d document) locateValue(e *Error, tag, text, goType string) {
	short, cut := strings.CutSuffix(text, "...")
	d.walk(func(_, val *yaml.Node, p fieldPath) bool {
		if val.Line != e.Line || val.ShortTag() != tag {
			return true
		}
		if val.Kind == yaml.ScalarNode && val.Value != text && !(cut && len(val.Value) > 10 && strings.HasPrefix(val.Value, short)) {
			return true
		}
		e.Column, e.Field = val.Column, p.String()
		e.Msg = fmt.Sprintf("expected %s, got %s", describeGoType(goType), describeTag(tag))
		if val.Kind == yaml.ScalarNode {
			e.Msg += fmt.Sprintf(" %q", val.Value)
		}
		return false
	})
}

func describeGoType(t string) string {
	t = strings.TrimPrefix(t, "*")
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "topology."):
		return "a mapping"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "string":
		return "a string"
	}
	return t
}

func describeTag(tag string) string {
	switch tag {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	}
	return tag
}
