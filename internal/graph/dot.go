package graph

import (
	"fmt"
	"strings"

	"github.com/dsrlab/dsrlab/topology"
)

// DOT renders t as a Graphviz digraph, with the same nodes, links and
// numbered flows as Mermaid.
func DOT(t *topology.Topology) string {
	d := draw(t)
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotLabel([]string{t.Name}))
	b.WriteString("    node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n")
	b.WriteString("    edge [fontname=\"Helvetica\", fontsize=10];\n")
	for _, n := range d.nodes {
		k := n.Kind.Spec()
		lines := nodeLines(t, n)
		lines[0] = n.Name + " (" + lines[0] + ")"
		fmt.Fprintf(&b, "    %s [label=%s, fillcolor=%q, color=%q];\n", d.ids[n], dotLabel(lines), k.Fill, k.Stroke)
	}
	for _, e := range d.edges {
		lines := e.lines
		if e.title != "" {
			lines = append([]string{"[" + e.title + "]"}, lines...)
		}
		attrs := fmt.Sprintf("label=%s, color=%q, fontcolor=%q, penwidth=%d", dotLabel(lines), styleColor[e.style], styleColor[e.style], styleWidth[e.style])
		switch e.style {
		case styleLink:
			attrs += ", dir=none"
		case styleTunnel:
			attrs += ", style=dashed"
		}
		fmt.Fprintf(&b, "    %s -> %s [%s];\n", d.ids[e.from], d.ids[e.to], attrs)
	}
	b.WriteString("}\n")
	return b.String()
}

var dotEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// dotLabel joins lines into a quoted DOT string with \n line breaks.
func dotLabel(lines []string) string {
	quoted := make([]string, len(lines))
	for i, l := range lines {
		quoted[i] = dotEscaper.Replace(l)
	}
	return `"` + strings.Join(quoted, `\n`) + `"`
}
