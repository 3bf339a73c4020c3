package pkttest

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Mismatch is one way a run differs from what its case expects.
type Mismatch struct {
	// Field names what differs as the case file does: verdict,
	// ip.dst, inner.tcp.dport, maps.stats, packet.
	Field     string
	Want, Got string
	// Off and Len locate a field of the output packet (Len 0: not one);
	// WantBytes and GotBytes are its bytes, WantBytes nil when the
	// expected value is not whole bytes (a flag bit).
	Off, Len            int
	WantBytes, GotBytes []byte
	// Whole: the expectation is the whole packet (unchanged, hex), and
	// WantBytes and GotBytes are both packets.
	Whole bool
	// Line and Column place the expectation in the case file.
	Line, Column int
}

// position of a layer in a packet: its depth (0 for the outer packet,
// one more inside each tunnel or ICMP quote), which part of the packet
// it is, and its index among parts of the same name at that depth.
type position struct {
	depth int
	part  string // eth, vlan, ip, ext, transport, payload
	n     int
}

func positions(layers []Layer) []position {
	out := make([]position, len(layers))
	count := map[position]int{}
	for i, l := range layers {
		part := l.Kind
		switch {
		case isIP(l.Kind):
			part = "ip"
		case isExt(l.Kind):
			part = "ext"
		case isTransport(l.Kind):
			part = "transport"
		}
		p := position{depth: l.Depth, part: part}
		p.n = count[p]
		count[p]++
		out[i] = p
	}
	return out
}

// layerName is how a diff names a layer: as the case file does.
func layerName(l Layer, p position) string {
	key := l.Key
	if key == "" {
		key = l.Kind
	}
	return strings.Repeat("inner.", p.depth) + key
}

// Compare checks the program's output against the expectation; in is the
// packet the program was given.
func (e *Expected) Compare(in, out []byte) []Mismatch {
	switch {
	case e.Unchanged:
		return compareWhole(in, out, "unchanged")
	case e.Bytes != nil:
		return compareWhole(e.Bytes, out, "the bytes given")
	}
	return compareLayers(e.Layers, Dissect(out), out)
}

func compareWhole(want, got []byte, what string) []Mismatch {
	if bytes.Equal(want, got) {
		return nil
	}
	differ, first := 0, -1
	for i := range max(len(want), len(got)) {
		if i >= len(want) || i >= len(got) || want[i] != got[i] {
			differ++
			if first < 0 {
				first = i
			}
		}
	}
	got1 := fmt.Sprintf("%d bytes, %d of them differ (the first at byte %d)", len(got), differ, first)
	return []Mismatch{{Field: "packet", Want: fmt.Sprintf("%s (%d bytes)", what, len(want)), Got: got1,
		WantBytes: want, GotBytes: got, Whole: true}}
}

func compareLayers(want, got []Layer, raw []byte) []Mismatch {
	gotAt := map[position]int{}
	for i, p := range positions(got) {
		gotAt[p] = i
	}
	var out []Mismatch
	for i, p := range positions(want) {
		w := want[i]
		name := layerName(w, p)
		j, ok := gotAt[p]
		if !ok {
			out = append(out, Mismatch{Field: name, Want: w.Kind, Got: "absent: " + describeLayers(got),
				Line: w.Line, Column: w.Column})
			continue
		}
		g := got[j]
		if w.Kind != g.Kind && !(w.Kind == "ip" && isIP(g.Kind)) {
			out = append(out, Mismatch{Field: name, Want: w.Kind, Got: g.Kind, Line: w.Line, Column: w.Column})
			continue
		}
		for _, wf := range w.Fields {
			d, _ := fieldDefOf(w.Kind, wf.Name)
			m := Mismatch{Field: name + "." + wf.Name, Want: describe(d, wf.Value, false), Line: wf.Line, Column: wf.Column}
			if wf.Text != "" && wf.Text != m.Want && (d.kind == addrK || d.kind == macK) {
				m.Want += " (" + wf.Text + ")"
			}
			if w.Kind == "payload" {
				m.Field = name
				if wf.Name == "size" {
					m.Field = name + ".size"
				} else if wf.Text != "" {
					m.Want = wf.Text // the text given, rather than its hex
				}
			}
			gf, ok := g.Get(wf.Name)
			if !ok {
				m.Got = "absent (the packet ends before it)"
				out = append(out, m)
				continue
			}
			if equal(d, gf.Value, wf.Value) {
				continue
			}
			m.Got = describe(d, gf.Value, true)
			if w.Kind == "payload" && wf.Text != "" {
				m.Got = strconv.Quote(string(gf.Value.Bytes))
			}
			m.Off, m.Len = gf.Off, gf.Len
			m.GotBytes = raw[gf.Off : gf.Off+gf.Len]
			m.WantBytes = wantBytes(d, wf.Value, gf.Len)
			out = append(out, m)
		}
	}
	return out
}

func putNum(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// wantBytes is an expected value as the n bytes of its field, or nil when
// it is not whole bytes.
func wantBytes(d fieldDef, v Value, n int) []byte {
	switch {
	case d.kind == macK || d.kind == addrK || d.kind == bytesK:
		return v.Bytes
	case d.kind == checksumK && v.Check != checkNone:
		return nil
	case d.kind == checksumK || d.kind == flagsK || d.kind == numK && d.bits == n*8:
		b := make([]byte, n)
		putNum(b, v.Num)
		return b
	}
	return nil
}

// describeLayers lists a packet's layers: "eth ipv4 ipv4 tcp payload".
func describeLayers(layers []Layer) string {
	var kinds []string
	for _, l := range layers {
		kinds = append(kinds, l.Kind)
	}
	if len(kinds) == 0 {
		return "the packet is empty"
	}
	return "the packet has " + strings.Join(kinds, " ")
}
