package pkttest

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/capture/filter"
)

// Observed is a frame of a capture and what the program did with it.
type Observed struct {
	Frame   int // from 1
	In, Out []byte
	Verdict Verdict
}

// CaseFileHeader says, in a case file written from a capture, which
// capture, lab, node and program it is about (paths as the case file will
// name them, relative to its directory; Program "" for the node's only
// one).
type CaseFileHeader struct {
	Capture, Topology, Node, Program string
}

// WriteCaseFile writes a case file holding each observed frame as a case
// that expects what the program did: the starting point for a test of
// what it should do.
func WriteCaseFile(w io.Writer, h CaseFileHeader, obs []Observed) error {
	root := mapping()
	if h.Topology != "" {
		add(root, "topology", scalar(h.Topology))
	}
	add(root, "node", scalar(h.Node))
	if h.Program != "" {
		add(root, "program", scalar(h.Program))
	}
	cases := &yaml.Node{Kind: yaml.SequenceNode}
	for _, o := range obs {
		c := mapping()
		add(c, "name", scalar(fmt.Sprintf("frame %d: %s", o.Frame, capture.Decode(o.In, filter.Ethernet).String(false))))
		pkt := flowMapping()
		add(pkt, "from", scalar(h.Capture))
		add(pkt, "frame", scalar(strconv.Itoa(o.Frame)))
		add(c, "packet", pkt)
		e := mapping()
		verdict := o.Verdict.String()
		if !o.Verdict.Known() {
			verdict = o.Verdict.Number() // as a case file reads it
		}
		add(e, "verdict", scalar(verdict))
		switch {
		case !o.Verdict.GoesOn():
		case bytes.Equal(o.In, o.Out):
			add(e, "packet", scalar("unchanged"))
		default:
			add(e, "packet", packetNode(Dissect(o.Out)))
		}
		add(c, "expect", e)
		cases.Content = append(cases.Content, c)
	}
	add(root, "cases", cases)
	root.HeadComment = fmt.Sprintf("Written by `dsrlab test --from-capture %s`: each frame with what the program did with it.\n"+
		"Edit the expectations into what it should do, then: dsrlab test THIS-FILE", h.Capture)
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mapping() *yaml.Node     { return &yaml.Node{Kind: yaml.MappingNode} }
func flowMapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle} }

// scalar is a value as the case file's reader takes it: its text, which
// the encoder quotes where YAML would read it otherwise.
func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
}

// derived are fields a case file leaves to be computed: written out,
// they would only repeat the packet's size.
var derived = map[string]bool{"ipv4.len": true, "ipv4.ihl": true, "ipv6.len": true, "tcp.off": true, "udp.len": true}

// zeroOmitted are fields written only when they are not zero.
var zeroOmitted = map[string]bool{"tos": true, "id": true, "flow": true, "urg": true, "frag": true, "mf": true,
	"df": true, "dei": true, "pcp": true, "options": true}

// packetNode writes dissected layers as a case file's packet: a mapping
// of layers, the inner packet of a tunnel or an ICMP error under inner.
func packetNode(layers []Layer) *yaml.Node {
	root := mapping()
	cur := root
	pos := positions(layers)
	var vlans, exts *yaml.Node
	for i, l := range layers {
		if isIP(l.Kind) && pos[i].depth > 0 {
			inner := mapping()
			add(cur, "inner", inner)
			cur, exts = inner, nil
		}
		fields := flowMapping()
		for _, f := range l.Fields {
			d, _ := fieldDefOf(l.Kind, f.Name)
			if f.minor || derived[l.Kind+"."+f.Name] || zeroOmitted[f.Name] && f.Value.Num == 0 && len(f.Value.Bytes) == 0 {
				continue
			}
			v := format(d, f.Value)
			if d.kind == checksumK && f.Value.Check == checkOK {
				v = "ok"
			}
			add(fields, f.Name, scalar(v))
		}
		switch {
		case l.Kind == "vlan":
			if vlans == nil {
				vlans = &yaml.Node{Kind: yaml.SequenceNode}
				add(cur, "vlan", vlans)
			}
			vlans.Content = append(vlans.Content, fields)
		case isExt(l.Kind):
			if exts == nil {
				exts = &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
				add(cur, "ext", exts)
			}
			e := flowMapping()
			add(e, l.Kind, fields)
			exts.Content = append(exts.Content, e)
		case l.Kind == "payload":
			p := flowMapping()
			add(p, "hex", scalar(format(fieldDef{kind: bytesK}, Value{Bytes: l.bytes("data")})))
			add(cur, "payload", p)
		default:
			add(cur, l.Kind, fields)
		}
	}
	return root
}
