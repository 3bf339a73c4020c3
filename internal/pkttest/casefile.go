package pkttest

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/bpf/btfvalue"
	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/capture/filter"
	"github.com/dsrlab/dsrlab/internal/fileio"
	"github.com/dsrlab/dsrlab/topology"
)

// Suite is a case file's cases (ReadHeader reads which program they
// test).
type Suite struct {
	File  string
	Cases []*Case
}

// Case is one test: a packet, or a sequence of them through one copy of
// the program, each with what it must give.
type Case struct {
	Name         string
	Line, Column int
	Steps        []*Step
}

// Step is one packet of a case, run Repeat times.
type Step struct {
	Line, Column int
	Packet       []byte
	// SKB is the socket buffer a TC program gets the packet in (nil: the
	// kernel's, every field zero).
	SKB    *SKB
	Repeat int
	Expect Expect
}

// Expect is what a run must give; what it leaves out is not checked.
type Expect struct {
	Verdict *Verdict
	Packet  *Expected
	Maps    []MapEntry
	// SKB are the fields of a TC program's socket buffer after the run.
	SKB []SKBField
	// verdictAt is where the case file gives the verdict.
	verdictAt [2]int
}

// Expected is an expected output packet: the input unchanged, exact
// bytes, or layers with only the fields named compared.
type Expected struct {
	Unchanged bool
	Bytes     []byte
	Layers    []Layer
}

// MapEntry is an expected map entry, key and value as in the topology's
// maps (BTF field names); only the fields the value names are compared.
type MapEntry struct {
	Map          string
	Key, Value   *yaml.Node
	Line, Column int
}

// Header is what a case file says about the program it tests: the lab
// (relative to the case file's directory), the node and which of its
// programs; "" when it names none.
type Header struct {
	Topology, Node, Program string
	// ProgramAt and NodeAt are where the file names them (line, column),
	// for the errors of choosing the program.
	ProgramAt, NodeAt [2]int
}

// ReadHeader reads the topology and node a case file names, before the
// lab is known: the lab resolves the NODE:IFACE references of the rest.
func ReadHeader(data []byte, file string) (Header, error) {
	var h Header
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return h, syntaxError(file, err)
	}
	root := docRoot(&doc)
	if root == nil || root.Kind != yaml.MappingNode {
		return h, nil // Parse says what is wrong
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "topology":
			h.Topology = v.Value
		case "node":
			h.Node, h.NodeAt = v.Value, [2]int{v.Line, v.Column}
		case "program":
			h.Program, h.ProgramAt = v.Value, [2]int{v.Line, v.Column}
		}
	}
	return h, nil
}

// syntaxError places a YAML syntax error at the line yaml.v3 names.
func syntaxError(file string, err error) error {
	msg := err.Error()
	line := 0
	// yaml.v3: "yaml: line N: ..."
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, after
			}
		}
	}
	return &topology.Error{File: file, Line: line, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return nil
}

// Parse reads a case file and builds its packets. NODE:IFACE references
// (in addresses, MACs and map values) are resolved through r, the lab's;
// verdicts and socket buffers are those of the program t. All the
// problems found are returned at once, each as file:line:col: field:
// message.
func Parse(data []byte, file string, r btfvalue.Resolver, t Target) (*Suite, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(file, err)
	}
	p := &parser{file: file, dir: filepath.Dir(file), r: r, target: t, captures: map[string]*capture.File{}}
	s := &Suite{File: file}
	root := docRoot(&doc)
	if root == nil {
		return nil, &topology.Error{File: file, Msg: "empty case file: it needs cases:"}
	}
	top := p.mapping(root, "", "topology", "node", "program", "cases")
	for _, k := range []string{"topology", "node", "program"} { // read by ReadHeader
		if n := top[k]; n != nil {
			p.str(n, k)
		}
	}
	cases := top["cases"]
	switch {
	case cases == nil && root.Kind == yaml.MappingNode:
		p.errorf(root, "cases", "missing: a case file lists its cases under cases:")
	case cases != nil && cases.Kind != yaml.SequenceNode:
		p.errorf(cases, "cases", "a list of cases, not %s", shape(cases))
	case cases != nil:
		names := map[string]bool{}
		for i, c := range cases.Content {
			tc := p.testCase(c, fmt.Sprintf("cases[%d]", i))
			if tc == nil {
				continue
			}
			if names[tc.Name] {
				p.errorf(c, fmt.Sprintf("cases[%d].name", i), "%q names another case too", tc.Name)
			}
			names[tc.Name] = true
			s.Cases = append(s.Cases, tc)
		}
	}
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *topology.Error) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, p.errs
	}
	return s, nil
}

type parser struct {
	file, dir string
	r         btfvalue.Resolver
	target    Target
	errs      topology.ErrorList
	captures  map[string]*capture.File
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	p.errs = append(p.errs, &topology.Error{File: p.file, Line: n.Line, Column: n.Column, Field: field,
		Msg: fmt.Sprintf(format, args...)})
}

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

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 32; i++ {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping returns the values of a mapping by key, reporting keys not in
// allowed, keys given twice and a node that is no mapping.
func (p *parser) mapping(n *yaml.Node, path string, allowed ...string) map[string]*yaml.Node {
	n = deref(n)
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "a mapping of %s, not %s", strings.Join(allowed, ", "), shape(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		switch {
		case !slices.Contains(allowed, k.Value):
			p.errorf(k, join(path, k.Value), "unknown field; this takes %s", strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			p.errorf(k, join(path, k.Value), "given twice")
		default:
			out[k.Value] = v
		}
	}
	return out
}

func (p *parser) str(n *yaml.Node, path string) string {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, path, "a single value, not %s", shape(n))
		return ""
	}
	return n.Value
}

func (p *parser) testCase(n *yaml.Node, path string) *Case {
	n = deref(n)
	f := p.mapping(n, path, "name", "packet", "repeat", "expect", "sequence")
	if n.Kind != yaml.MappingNode {
		return nil
	}
	tc := &Case{Line: n.Line, Column: n.Column}
	if f["name"] == nil {
		p.errorf(n, join(path, "name"), "missing: every case has a name")
	} else {
		tc.Name = p.str(f["name"], join(path, "name"))
	}
	if seq := f["sequence"]; seq != nil {
		for _, k := range []string{"packet", "repeat", "expect"} {
			if f[k] != nil {
				p.errorf(f[k], join(path, k), "a case with a sequence gives %s in each of its steps", k)
			}
		}
		if seq.Kind != yaml.SequenceNode || len(seq.Content) == 0 {
			p.errorf(seq, join(path, "sequence"), "a list of steps (packet, expect, repeat), not %s", shape(seq))
			return tc
		}
		for i, st := range seq.Content {
			spath := fmt.Sprintf("%s.sequence[%d]", path, i)
			sf := p.mapping(st, spath, "packet", "repeat", "expect")
			tc.Steps = append(tc.Steps, p.step(deref(st), sf, spath))
		}
		return tc
	}
	tc.Steps = []*Step{p.step(n, f, path)}
	return tc
}

// maxRepeat bounds repeat: each run is one syscall.
const maxRepeat = 1_000_000

func (p *parser) step(n *yaml.Node, f map[string]*yaml.Node, path string) *Step {
	st := &Step{Line: n.Line, Column: n.Column, Repeat: 1}
	if f["packet"] == nil {
		p.errorf(n, join(path, "packet"), "missing: the packet to run")
	} else {
		pkt, skb := withoutKey(f["packet"], "skb")
		st.Packet = p.packet(pkt, join(path, "packet"))
		if skb != nil {
			st.SKB = &SKB{}
			for _, f := range p.skb(skb, join(path, "packet.skb")) {
				*f.field(st.SKB) = f.Value
			}
		}
	}
	if r := f["repeat"]; r != nil {
		v, err := strconv.Atoi(r.Value)
		if r.Kind != yaml.ScalarNode || err != nil || v < 1 || v > maxRepeat {
			p.errorf(r, join(path, "repeat"), "%s: want a number of runs from 1 to %d", shape(r), maxRepeat)
		}
		st.Repeat = v
	}
	if e := f["expect"]; e != nil {
		st.Expect = p.expect(e, join(path, "expect"))
	} else {
		p.errorf(n, join(path, "expect"), "missing: what the program must do with the packet (verdict, packet, maps)")
	}
	return st
}

func (p *parser) expect(n *yaml.Node, path string) Expect {
	var e Expect
	f := p.mapping(n, path, "verdict", "packet", "maps", "skb")
	if v := f["verdict"]; v != nil {
		verdict, err := ParseVerdict(p.str(v, join(path, "verdict")), p.target)
		if err != nil {
			p.errorf(v, join(path, "verdict"), "%v", err)
		}
		e.Verdict = &verdict
		e.verdictAt = [2]int{v.Line, v.Column}
	}
	if pk := f["packet"]; pk != nil {
		e.Packet = p.expectedPacket(pk, join(path, "packet"))
	}
	if m := f["maps"]; m != nil {
		e.Maps = p.maps(m, join(path, "maps"))
	}
	if s := f["skb"]; s != nil {
		e.SKB = p.skb(s, join(path, "skb"))
	}
	if len(f) == 0 && deref(n).Kind == yaml.MappingNode {
		p.errorf(n, path, "names nothing to check: give a verdict, a packet, maps or skb")
	}
	return e
}

func (p *parser) maps(n *yaml.Node, path string) []MapEntry {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "a mapping of map names to entries ({key: ..., value: ...}), not %s", shape(n))
		return nil
	}
	var out []MapEntry
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, v := deref(n.Content[i]), deref(n.Content[i+1])
		entries := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			entries = v.Content
		}
		for j, en := range entries {
			epath := join(path, name.Value)
			if v.Kind == yaml.SequenceNode {
				epath = fmt.Sprintf("%s[%d]", epath, j)
			}
			f := p.mapping(en, epath, "key", "value")
			if f["key"] == nil || f["value"] == nil {
				if deref(en).Kind == yaml.MappingNode {
					p.errorf(en, epath, "an entry gives both key and value")
				}
				continue
			}
			out = append(out, MapEntry{Map: name.Value, Key: f["key"], Value: f["value"], Line: en.Line, Column: en.Column})
		}
	}
	return out
}

// packet builds the packet a step sends.
func (p *parser) packet(n *yaml.Node, path string) []byte {
	n = deref(n)
	if n.Kind == yaml.MappingNode && slices.ContainsFunc(n.Content, func(k *yaml.Node) bool {
		return k.Value == "hex" || k.Value == "from" || k.Value == "frame"
	}) {
		f := p.mapping(n, path, "hex", "from", "frame")
		if f["hex"] != nil && len(f) > 1 {
			p.errorf(n, path, "a packet is given as layers, as hex, or from a capture (from, frame), one of them")
			return nil
		}
		if f["hex"] != nil {
			return p.hex(f["hex"], join(path, "hex"))
		}
		return p.fromCapture(n, f, path)
	}
	layers := p.layers(n, path, 0, false)
	if layers == nil {
		return nil
	}
	b, err := Build(layers)
	if err != nil {
		p.errorf(n, path, "%v", err)
	}
	return b
}

func (p *parser) hex(n *yaml.Node, path string) []byte {
	v, err := parseValue(of("hex", bytesK), p.str(n, path), false, nil)
	if err != nil {
		p.errorf(n, path, "%v", err)
	}
	return v.Bytes
}

// fromCapture takes a frame (numbered from 1, as Wireshark and `dsrlab
// test --from-capture` number them) of a pcap or pcapng file, named
// relative to the case file.
func (p *parser) fromCapture(n *yaml.Node, f map[string]*yaml.Node, path string) []byte {
	if f["from"] == nil || f["frame"] == nil {
		p.errorf(n, path, "a packet from a capture gives both from (the file) and frame (its number, from 1)")
		return nil
	}
	name := p.str(f["from"], join(path, "from"))
	frame, err := strconv.Atoi(f["frame"].Value)
	if err != nil || frame < 1 {
		p.errorf(f["frame"], join(path, "frame"), "%s: want a frame number, from 1", shape(f["frame"]))
		return nil
	}
	file := name
	if !filepath.IsAbs(file) {
		file = filepath.Join(p.dir, file)
	}
	c, ok := p.captures[file]
	if !ok {
		data, err := fileio.ReadRegular(file, fileio.MaxObject)
		if err == nil {
			c, err = capture.ReadFile(data)
		}
		if err != nil {
			p.errorf(f["from"], join(path, "from"), "%v", err)
		}
		p.captures[file] = c
	}
	if c == nil {
		return nil
	}
	if frame > len(c.Packets) {
		p.errorf(f["frame"], join(path, "frame"), "%s has %d frames", name, len(c.Packets))
		return nil
	}
	pkt := c.Packets[frame-1]
	if c.Interfaces[pkt.Iface].LinkType != filter.Ethernet {
		p.errorf(f["frame"], join(path, "frame"), "frame %d of %s is not an Ethernet frame, and XDP and TC programs see Ethernet frames", frame, name)
		return nil
	}
	return bytes.Clone(pkt.Data)
}

// expectedPacket reads "unchanged", exact hex, or layers of which only
// the fields named are compared.
func (p *parser) expectedPacket(n *yaml.Node, path string) *Expected {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		if n.Value != "unchanged" {
			p.errorf(n, path, "%s: want unchanged, {hex: ...} or the packet's layers", shape(n))
		}
		return &Expected{Unchanged: true}
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "hex" {
		return &Expected{Bytes: p.hex(deref(n.Content[1]), join(path, "hex"))}
	}
	return &Expected{Layers: p.layers(n, path, 0, true)}
}

// maxDepth bounds the nesting of inner packets: a tunnel in a tunnel in
// an ICMP error is already far.
const maxDepth = 8

// layerKeys are the keys of a packet's mapping, in the order of the
// layers they give.
var layerKeys = []string{"eth", "vlan", "ip", "ipv4", "ipv6", "ext", "tcp", "udp", "icmp", "icmpv6", "inner", "payload"}

// layers reads a packet given as a mapping of layers, into the list of
// them outermost first. depth counts the inner packets (of a tunnel or
// an ICMP error) around this one. In an expectation, "ip" without an
// address matches either family.
func (p *parser) layers(n *yaml.Node, path string, depth int, expect bool) []Layer {
	n = deref(n)
	f := p.mapping(n, path, layerKeys...)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	keyOf := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyOf[deref(n.Content[i]).Value] = deref(n.Content[i])
	}
	var out []Layer
	add := func(kind, key string, v *yaml.Node) {
		if l, ok := p.layer(kind, key, v, join(path, key), expect); ok {
			l.Depth = depth
			out = append(out, l)
		}
	}
	if depth > 0 {
		for _, k := range []string{"eth", "vlan"} {
			if f[k] != nil {
				p.errorf(keyOf[k], join(path, k), "an inner packet (of a tunnel or an ICMP error) has no %s header", k)
			}
		}
	}
	if v := f["eth"]; v != nil {
		add("eth", "eth", v)
	}
	if v := f["vlan"]; v != nil {
		tags := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			tags = v.Content
		}
		for i, t := range tags {
			key := "vlan"
			if v.Kind == yaml.SequenceNode {
				key = fmt.Sprintf("vlan[%d]", i)
			}
			add("vlan", key, t)
		}
	}
	var ipKeys []string
	for _, k := range []string{"ip", "ipv4", "ipv6"} {
		if f[k] != nil {
			ipKeys = append(ipKeys, k)
		}
	}
	if len(ipKeys) > 1 {
		p.errorf(keyOf[ipKeys[1]], join(path, ipKeys[1]), "one IP header per packet: %s is given too (an inner packet goes under inner:)", ipKeys[0])
	}
	var transport []string
	for _, k := range []string{"tcp", "udp", "icmp", "icmpv6"} {
		if f[k] != nil {
			transport = append(transport, k)
		}
	}
	if len(transport) > 1 {
		p.errorf(keyOf[transport[1]], join(path, transport[1]), "one transport header per packet: %s is given too", transport[0])
	}
	// An expectation may skip layers; a packet sent has them all.
	hasIP := len(ipKeys) > 0 || expect
	if !hasIP {
		for _, k := range append(slices.Clone(transport), "ext", "inner") {
			if f[k] != nil {
				p.errorf(keyOf[k], join(path, k), "%s needs an IP header (ip, ipv4 or ipv6) before it", k)
			}
		}
	}
	if len(ipKeys) > 0 {
		add(ipKind(ipKeys[0], f[ipKeys[0]], expect), ipKeys[0], f[ipKeys[0]])
	}
	if v := f["ext"]; v != nil && hasIP {
		for _, l := range p.exts(v, join(path, "ext"), expect) {
			l.Depth = depth
			out = append(out, l)
		}
	}
	if len(transport) > 0 && hasIP {
		add(transport[0], transport[0], f[transport[0]])
	}
	if v := f["inner"]; v != nil && hasIP {
		if len(transport) > 0 && transport[0] != "icmp" && transport[0] != "icmpv6" {
			p.errorf(keyOf["inner"], join(path, "inner"), "inner is the packet of a tunnel (no transport header) or the one an ICMP error quotes, not something %s carries", transport[0])
		}
		if f["payload"] != nil {
			p.errorf(keyOf["payload"], join(path, "payload"), "a packet with an inner packet has its payload in the inner one")
		}
		if depth+1 > maxDepth {
			p.errorf(v, join(path, "inner"), "inner packets nest at most %d deep", maxDepth)
			return out
		}
		inner := p.layers(v, join(path, "inner"), depth+1, expect)
		if len(inner) > 0 && !isIP(inner[0].Kind) && !expect {
			p.errorf(v, join(path, "inner"), "an inner packet starts with its IP header (ip, ipv4 or ipv6)")
		}
		out = append(out, inner...)
	}
	if v := f["payload"]; v != nil {
		if l, ok := p.payload(v, join(path, "payload")); ok {
			l.Depth = depth
			out = append(out, l)
		}
	}
	return out
}

// ipKind is the family an "ip" layer has: IPv6 when an address says so,
// else IPv4; in an expectation naming no address, either.
func ipKind(key string, n *yaml.Node, expect bool) string {
	if key != "ip" {
		return key
	}
	n = deref(n)
	if n.Kind == yaml.MappingNode {
		addressed := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := deref(n.Content[i]).Value, deref(n.Content[i+1])
			if k != "src" && k != "dst" {
				continue
			}
			addressed = true
			if a, err := netip.ParseAddr(v.Value); err == nil && a.Is6() {
				return "ipv6"
			}
		}
		if !addressed && expect {
			return "ip"
		}
	}
	return "ipv4"
}

// oneFamily tells the fields of only IPv4's or only IPv6's header.
func oneFamily(name string) bool {
	_, v4 := fieldDefOf("ipv4", name)
	_, v6 := fieldDefOf("ipv6", name)
	return v4 || v6
}

// exts reads IPv6 extension headers: a list of hop, dest, routing or frag,
// each a name or a mapping of one name to its fields.
func (p *parser) exts(n *yaml.Node, path string, expect bool) []Layer {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, path, "a list of extension headers (hop, dest, routing, frag), not %s", shape(n))
		return nil
	}
	var out []Layer
	for i, e := range n.Content {
		e = deref(e)
		epath := fmt.Sprintf("%s[%d]", path, i)
		kind, fields := e.Value, &yaml.Node{Kind: yaml.MappingNode, Line: e.Line, Column: e.Column}
		if e.Kind == yaml.MappingNode && len(e.Content) == 2 {
			kind, fields = deref(e.Content[0]).Value, e.Content[1]
		} else if e.Kind != yaml.ScalarNode {
			p.errorf(e, epath, "an extension header: hop, dest, routing or frag, or {frag: {id: 1}}")
			continue
		}
		if !isExt(kind) {
			p.errorf(e, epath, "%q is no extension header: hop, dest, routing or frag", kind)
			continue
		}
		if l, ok := p.layer(kind, fmt.Sprintf("ext[%d]", i), fields, join(epath, kind), expect); ok {
			out = append(out, l)
		}
	}
	return out
}

// payload reads the bytes after the last header: text, {hex: ...}, or
// {size: N} (zeros; in an expectation, only the size is compared).
func (p *parser) payload(n *yaml.Node, path string) (Layer, bool) {
	l := Layer{Kind: "payload", Key: "payload", Line: n.Line, Column: n.Column}
	if n.Kind == yaml.ScalarNode {
		l.Fields = []Field{{Name: "data", Value: Value{Bytes: []byte(n.Value)}, Line: n.Line, Column: n.Column, Text: strconv.Quote(n.Value)}}
		return l, true
	}
	f := p.mapping(n, path, "hex", "size")
	if len(f) != 1 {
		if n.Kind == yaml.MappingNode {
			p.errorf(n, path, "a payload is text, {hex: ...} or {size: N}")
		}
		return l, false
	}
	if h := f["hex"]; h != nil {
		l.Fields = []Field{{Name: "data", Value: Value{Bytes: p.hex(h, join(path, "hex"))}, Line: h.Line, Column: h.Column}}
		return l, true
	}
	s := f["size"]
	v, err := parseNum(s.Value, 16)
	if err != nil {
		p.errorf(s, join(path, "size"), "%v", err)
		return l, false
	}
	l.Fields = []Field{{Name: "size", Value: Value{Num: v}, Line: s.Line, Column: s.Column}}
	return l, true
}

// layer reads one header's fields.
func (p *parser) layer(kind, key string, n *yaml.Node, path string, expect bool) (Layer, bool) {
	n = deref(n)
	l := Layer{Kind: kind, Key: key, Line: n.Line, Column: n.Column}
	if n.Kind == yaml.ScalarNode && n.Value == "" || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return l, true // "tcp:" alone: every field computed or zero
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "%s takes a mapping of its fields (%s), not %s", kind, fieldNames(kind), shape(n))
		return l, false
	}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		d, known := fieldDefOf(kind, k.Value)
		fpath := join(path, k.Value)
		switch {
		case !known && kind == "ip" && oneFamily(k.Value):
			p.errorf(k, fpath, "%s belongs to one family: write ipv4: or ipv6: (or give an address) instead of ip:", k.Value)
		case !known:
			p.errorf(k, fpath, "%s has no field %q; its fields: %s", kind, k.Value, fieldNames(kind))
		case l.has(k.Value):
			p.errorf(k, fpath, "given twice")
		case v.Kind != yaml.ScalarNode:
			p.errorf(v, fpath, "a single value, not %s", shape(v))
		case d.kind == checksumK && !expect && (v.Value == "ok" || v.Value == "bad"):
			p.errorf(v, fpath, "ok and bad are for expectations; a packet sent has its checksum computed unless a number is given")
		default:
			val, err := parseValue(d, v.Value, kind == "ipv6", p.r)
			if err != nil {
				p.errorf(v, fpath, "%v", err)
				ok = false
				continue
			}
			l.Fields = append(l.Fields, Field{Name: k.Value, Value: val, Line: v.Line, Column: v.Column, Text: v.Value})
			continue
		}
		ok = false
	}
	return l, ok
}

// withoutKey splits a mapping into its key k's value and a copy of it
// without k (n itself when it has no k).
func withoutKey(n *yaml.Node, k string) (rest, v *yaml.Node) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return n, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if deref(n.Content[i]).Value == k {
			c := *n
			c.Content = slices.Concat(n.Content[:i], n.Content[i+2:])
			return &c, deref(n.Content[i+1])
		}
	}
	return n, nil
}

// skb reads socket buffer fields, which only a TC program has.
func (p *parser) skb(n *yaml.Node, path string) []SKBField {
	if p.target.Hook != HookTC {
		p.errorf(n, path, "skb is a TC program's socket buffer (struct __sk_buff), and %s is an XDP program", cmp.Or(p.target.Name, "the program"))
		return nil
	}
	var out []SKBField
	f := p.mapping(n, path, skbFieldNames...)
	for _, name := range skbFieldNames {
		v := f[name]
		if v == nil {
			continue
		}
		text := p.str(v, join(path, name))
		if v.Kind != yaml.ScalarNode {
			continue
		}
		num, err := parseNum(text, 32)
		if err != nil {
			p.errorf(v, join(path, name), "%v", err)
			continue
		}
		out = append(out, SKBField{Name: name, Value: uint32(num), Line: v.Line, Column: v.Column})
	}
	return out
}
