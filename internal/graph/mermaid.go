package graph

import (
	"fmt"
	"strings"

	"github.com/dsrlab/dsrlab/topology"
)

// Colours of the reference README's diagram by edge style; the kinds'
// colours are in the kinds table (topology.Kinds).
var (
	styleColor = map[style]string{
		styleLink:    "#9e9e9e",
		styleRequest: "#1565c0",
		styleTunnel:  "#2e7d32",
		styleReply:   "#c2185b",
	}
	styleWidth = map[style]int{styleLink: 1, styleRequest: 2, styleTunnel: 2, styleReply: 3}
	styles     = []style{styleLink, styleRequest, styleTunnel, styleReply}
)

// Mermaid renders t as a Mermaid flowchart (graph TD): links as plain
// lines, then each VIP's flow as numbered arrows, styled by index with
// linkStyle because Mermaid has no per-edge classes in graph TD.
func Mermaid(t *topology.Topology) string {
	d := draw(t)
	var b strings.Builder
	b.WriteString("graph TD\n")
	for _, k := range topology.Kinds() {
		fmt.Fprintf(&b, "    classDef %s fill:%s,stroke:%s,stroke-width:2px,color:#000\n", k.Kind, k.Fill, k.Stroke)
	}
	for _, n := range d.nodes {
		lines := nodeLines(t, n)
		lines[0] = "<b>" + n.Name + "</b> (" + lines[0] + ")"
		fmt.Fprintf(&b, "    %s(\"%s\"):::%s\n", d.ids[n], mermaidText(lines), n.Kind)
	}
	indexes := map[style][]string{}
	for i, e := range d.edges {
		indexes[e.style] = append(indexes[e.style], fmt.Sprint(i))
		from, to := d.ids[e.from], d.ids[e.to]
		lines := e.lines
		if e.title != "" {
			lines = append([]string{"<b>[" + e.title + "]</b>"}, lines...)
		}
		label := mermaidText(lines)
		switch e.style {
		case styleLink:
			fmt.Fprintf(&b, "    %s ---|\"%s\"| %s\n", from, label, to)
		case styleTunnel:
			fmt.Fprintf(&b, "    %s -.->|\"%s\"| %s\n", from, label, to)
		default:
			fmt.Fprintf(&b, "    %s -->|\"%s\"| %s\n", from, label, to)
		}
	}
	for _, s := range styles {
		if idx := indexes[s]; idx != nil {
			fmt.Fprintf(&b, "    linkStyle %s stroke:%s,stroke-width:%dpx", strings.Join(idx, ","), styleColor[s], styleWidth[s])
			if s == styleTunnel {
				b.WriteString(",stroke-dasharray:5 5")
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// mermaidText joins lines into a quoted Mermaid label. Mermaid reads
// entity codes in labels, so the only character to escape is the quote.
func mermaidText(lines []string) string {
	return strings.ReplaceAll(strings.Join(lines, "<br/>"), `"`, "#quot;")
}
