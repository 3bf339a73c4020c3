package graph

import (
	"slices"

	"github.com/dsrlab/dsrlab/topology"
)

// Scene is the drawing laid out for a page that draws it itself: the same
// nodes, links and numbered flows as Mermaid and DOT, with each node
// placed on a grid and each link's directions named by the flows that
// cross them.
type Scene struct {
	Lab   string       `json:"lab"`
	Nodes []SceneNode  `json:"nodes"`
	Links []SceneLink  `json:"links"`
	Flows []SceneFlow  `json:"flows"`
	Style []SceneStyle `json:"styles"`
}

// SceneNode is a node at row Row (its distance in links from the nearest
// client, so the drawing reads top down as the request travels) and
// column Col of Cols in that row.
type SceneNode struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Fill   string   `json:"fill"`
	Stroke string   `json:"stroke"`
	Lines  []string `json:"lines"` // as graph labels it, kind first
	Row    int      `json:"row"`
	Col    int      `json:"col"`
	Cols   int      `json:"cols"`
}

// SceneLink is a link between the interfaces A and B ("node:iface"), and
// the styles of the flows that cross it from A to B and from B to A.
type SceneLink struct {
	A     string   `json:"a"`
	B     string   `json:"b"`
	Label string   `json:"label"`
	AtoB  []string `json:"a_to_b"`
	BtoA  []string `json:"b_to_a"`
}

// SceneFlow is one numbered hop of a VIP's flow, out of interface From
// into To.
type SceneFlow struct {
	From  string   `json:"from"`
	To    string   `json:"to"`
	Style string   `json:"style"`
	Title string   `json:"title"`
	Lines []string `json:"lines"`
}

// SceneStyle is how the edges of one style are drawn.
type SceneStyle struct {
	Name   string `json:"name"`
	Color  string `json:"color"`
	Width  int    `json:"width"`
	Dashed bool   `json:"dashed"`
}

var styleName = map[style]string{styleLink: "link", styleRequest: "request", styleTunnel: "tunnel", styleReply: "reply"}

// Layout lays t out as a Scene.
func Layout(t *topology.Topology) Scene {
	d := draw(t)
	sc := Scene{Lab: t.Name, Nodes: []SceneNode{}, Links: []SceneLink{}, Flows: []SceneFlow{}}
	for _, s := range styles {
		sc.Style = append(sc.Style, SceneStyle{Name: styleName[s], Color: styleColor[s], Width: styleWidth[s], Dashed: s == styleTunnel})
	}
	rows := rowsOf(t)
	cols := map[int]int{}
	for _, n := range d.nodes {
		k := n.Kind.Spec()
		r := rows[n]
		sc.Nodes = append(sc.Nodes, SceneNode{Name: n.Name, Kind: string(n.Kind), Fill: k.Fill, Stroke: k.Stroke,
			Lines: nodeLines(t, n), Row: r, Col: cols[r]})
		cols[r]++
	}
	for i := range sc.Nodes {
		sc.Nodes[i].Cols = cols[sc.Nodes[i].Row]
	}
	link := map[*topology.Interface]*SceneLink{}
	for i, l := range t.Links {
		sc.Links = append(sc.Links, SceneLink{A: l.A.String(), B: l.B.String(), Label: d.edges[i].lines[0], AtoB: []string{}, BtoA: []string{}})
	}
	for i, l := range t.Links {
		link[l.A], link[l.B] = &sc.Links[i], &sc.Links[i]
	}
	for _, e := range d.edges {
		if e.out == nil {
			continue
		}
		name := styleName[e.style]
		sc.Flows = append(sc.Flows, SceneFlow{From: e.out.String(), To: e.out.Peer.String(), Style: name, Title: e.title, Lines: e.lines})
		l := link[e.out]
		dir := &l.AtoB
		if l.B == e.out.String() {
			dir = &l.BtoA
		}
		if !slices.Contains(*dir, name) {
			*dir = append(*dir, name)
		}
	}
	return sc
}

// rowsOf is each node's distance in links from the nearest client; nodes
// no client reaches go below the rest.
func rowsOf(t *topology.Topology) map[*topology.Node]int {
	rows := map[*topology.Node]int{}
	queue := t.NodesOfKind(topology.KindClient)
	for _, c := range queue {
		rows[c] = 0
	}
	if len(queue) == 0 && len(t.Nodes) > 0 {
		queue = t.Nodes[:1]
		rows[queue[0]] = 0
	}
	deepest := 0
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, ifc := range n.Interfaces {
			p := ifc.Peer.Node
			if _, seen := rows[p]; !seen {
				rows[p] = rows[n] + 1
				deepest = max(deepest, rows[p])
				queue = append(queue, p)
			}
		}
	}
	for _, n := range t.Nodes {
		if _, seen := rows[n]; !seen {
			rows[n] = deepest + 1
		}
	}
	return rows
}
