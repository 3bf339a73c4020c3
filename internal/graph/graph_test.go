package graph

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// golden labs: the name of the golden files, and the topology drawn.
var goldenLabs = map[string]string{
	"dsr":         "../../labs/dsr.yaml",
	"nat":         "../../labs/nat.yaml",
	"three-reals": "testdata/three-reals.yaml",
	"dualstack":   "../../labs/dsr-dualstack.yaml",
	"tier":        "../../labs/dsr-tier.yaml",
}

func TestGolden(t *testing.T) {
	for name, file := range goldenLabs {
		topo, err := topology.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		for ext, render := range map[string]func(*topology.Topology) string{".mmd": Mermaid, ".dot": DOT} {
			t.Run(name+ext, func(t *testing.T) {
				got := render(topo)
				if again := render(topo); again != got {
					t.Fatalf("two renderings differ")
				}
				path := filepath.Join("testdata", name+ext)
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs from %s (run with -update if the change is intended):\n%s", ext, path, got)
				}
			})
		}
	}
}

// TestReferenceFlow checks the reference lab's arrows against the
// reference README's diagram: the six steps, in order, with their
// interfaces and styles.
func TestReferenceFlow(t *testing.T) {
	topo, err := topology.Load("../../labs/dsr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		from, to, title, ifaces string
		style                   style
	}{
		{"client", "router", "1. Request", "(eth0 → eth2)", styleRequest},
		{"router", "katran", "2. Forward", "(eth0 → eth0)", styleRequest},
		{"katran", "router", "3. IPIP Encap", "(eth0 → eth0)", styleTunnel},
		{"router", "real", "4. Forward IPIP", "(eth1 → eth0)", styleTunnel},
		{"real", "router", "5. DSR Reply", "(eth0 → eth1)", styleReply},
		{"router", "client", "6. Return", "(eth2 → eth0)", styleReply},
	}
	var flows []edge
	for _, e := range draw(topo).edges {
		if e.style != styleLink {
			flows = append(flows, e)
		}
	}
	if len(flows) != len(want) {
		t.Fatalf("%d flow edges, want %d: %v", len(flows), len(want), flows)
	}
	for i, w := range want {
		e := flows[i]
		if e.from.Name != w.from || e.to.Name != w.to || e.title != w.title || e.lines[0] != w.ifaces || e.style != w.style {
			t.Errorf("edge %d: %s -> %s %q %q style %d, want %s -> %s %q %q style %d",
				i, e.from.Name, e.to.Name, e.title, e.lines[0], e.style, w.from, w.to, w.title, w.ifaces, w.style)
		}
	}
}

// TestNATHairpin checks that the NAT lab's replies go back through the
// load balancer: real -> router -> katran -> router -> client, all red.
func TestNATHairpin(t *testing.T) {
	topo, err := topology.Load("../../labs/nat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	for _, e := range draw(topo).edges {
		if e.style == styleReply {
			path = append(path, e.from.Name+">"+e.to.Name)
		}
	}
	// The same hair-pin for each of the lab's VIPs (IPv4 and IPv6).
	hairpin := "real>router router>katran katran>router router>client"
	want := strings.TrimSpace(strings.Repeat(hairpin+" ", len(topo.VIPs)))
	if got := strings.Join(path, " "); got != want {
		t.Errorf("reply path %s, want %s", got, want)
	}
}

// TestMermaidSyntax checks what Mermaid is strict about: every linkStyle
// index names an edge, and every edge has a style.
func TestMermaidSyntax(t *testing.T) {
	for name, file := range goldenLabs {
		topo, err := topology.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		out := Mermaid(topo)
		edges := regexp.MustCompile(`(?m)^    n\d+_\w+ (---|-->|-\.->)\|"[^"]*"\| n\d+_\w+$`).FindAllString(out, -1)
		styled := map[int]bool{}
		for _, m := range regexp.MustCompile(`(?m)^    linkStyle ([\d,]+) `).FindAllStringSubmatch(out, -1) {
			for _, s := range strings.Split(m[1], ",") {
				i, _ := strconv.Atoi(s)
				if i >= len(edges) || styled[i] {
					t.Errorf("%s: linkStyle index %d is out of range or repeated", name, i)
				}
				styled[i] = true
			}
		}
		if len(styled) != len(edges) {
			t.Errorf("%s: %d edges, %d styled", name, len(edges), len(styled))
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			if !strings.HasPrefix(line, "    classDef ") && !strings.HasPrefix(line, "    linkStyle ") &&
				!regexp.MustCompile(`^    n\d+_\w+(\("[^"]*"\):::\w+| (---|-->|-\.->)\|"[^"]*"\| n\d+_\w+)$`).MatchString(line) {
				t.Errorf("%s: line %q is none of classDef, node, edge, linkStyle", name, line)
			}
		}
	}
}

// A user's balancer sets the outer source itself: the drawing says so
// rather than show katran's address.
func TestOwnProgramOuterSource(t *testing.T) {
	topo, err := topology.Load("../../examples/xdp-lb-minimal/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range draw(topo).edges {
		for _, l := range e.lines {
			if strings.HasPrefix(l, "Outer: ") {
				found = true
				if l != "Outer: source set by the program → 10.111.222.11" {
					t.Errorf("outer header drawn as %q", l)
				}
			}
		}
	}
	if !found {
		t.Error("no outer header drawn")
	}
}
