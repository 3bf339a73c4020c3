package topology_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/topology"
)

// parseHostile parses an input built to exhaust the parser. An exponential
// blow-up shows as the test run's timeout; the cost of the large inputs is
// measured by BenchmarkParseHostile, not asserted here, since the machines
// are shared and a wall-clock bound in a test only adds flakiness.
func parseHostile(t *testing.T, data []byte, file string) (*topology.Topology, error) {
	t.Helper()
	return topology.Parse(data, file)
}

func BenchmarkParseHostile(b *testing.B) {
	for _, n := range []int{100, 4096, 10000} {
		data := generatedLab(n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				topology.Parse(data, "bench.yaml")
			}
		})
	}
}

// generatedLab is a valid lab of n nodes: a router with one katran, one
// client and n-3 reals, each on its own /30, and one VIP backed by every
// real.
func generatedLab(n int) []byte {
	var b strings.Builder
	b.WriteString("name: big\nnodes:\n  r: {kind: router}\n  k: {kind: katran}\n  c: {kind: client}\n")
	for i := range n - 3 {
		fmt.Fprintf(&b, "  s%d: {kind: real}\n", i)
	}
	b.WriteString("links:\n")
	peers := []string{"k", "c"}
	for i := range n - 3 {
		peers = append(peers, fmt.Sprintf("s%d", i))
	}
	var reals []string
	for i, p := range peers {
		// Link i is 10.0.0.0/30 + i: the router is .1 of the block, the peer .2.
		host := func(h uint32) string {
			v := 10<<24 | uint32(i)*4 | h
			return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
		}
		fmt.Fprintf(&b, "  - endpoints: [r:e%d, %s:eth0]\n    ipv4: [%s/30, %s/30]\n", i, p, host(1), host(2))
		if strings.HasPrefix(p, "s") {
			reals = append(reals, p)
		}
	}
	fmt.Fprintf(&b, "vips:\n  - {address: 192.168.10.1, port: 80, lb: k, reals: [%s]}\n", strings.Join(reals, ", "))
	return []byte(b.String())
}

func TestLabAtNodeLimit(t *testing.T) {
	topo, err := parseHostile(t, generatedLab(topology.MaxNodes), "max.yaml")
	if err != nil {
		t.Fatalf("a lab of MaxNodes nodes: %v", firstLines(err, 5))
	}
	if len(topo.Nodes) != topology.MaxNodes || len(topo.VIPs[0].Reals) != topology.MaxNodes-3 {
		t.Errorf("%d nodes, %d reals", len(topo.Nodes), len(topo.VIPs[0].Reals))
	}
}

func TestLabOverNodeLimit(t *testing.T) {
	_, err := parseHostile(t, generatedLab(10000), "huge.yaml")
	var list topology.ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Field != "nodes" || !strings.Contains(list[0].Msg, "at most 4096 nodes") {
		t.Errorf("a lab of 10000 nodes: %v, want one error on nodes naming the limit", firstLines(err, 5))
	}
}

// TestAliasBomb checks that alias bombs are refused quickly. The typed
// decoding never expands an alias to a list where a string belongs, and
// yaml.v3 bounds the expansion ratio of the rest.
func TestAliasBomb(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "invalid", "alias-bomb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseHostile(t, data, "alias-bomb.yaml"); err == nil {
		t.Error("the billion laughs parsed")
	}

	// Anchors in valid fields, aliased where a list of strings belongs:
	// every level multiplies the strings by 10.
	var b strings.Builder
	b.WriteString("name: t\nnodes:\n  c0: {kind: client, exec: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]}\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "  c%d: {kind: client, exec: &a%d [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", "))
	}
	if _, err := parseHostile(t, []byte(b.String()), "alias-lists.yaml"); err == nil {
		t.Error("nested aliases in exec parsed")
	}
}

func TestLongValues(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	for name, doc := range map[string]string{
		"name":  "name: " + long + "\nnodes: {c: {kind: client}}\n",
		"node":  "name: t\nnodes: {" + long + ": {kind: client}}\n",
		"cmd":   "name: t\nnodes: {c: {kind: client, cmd: " + long + "}}\n",
		"ipv4":  "name: t\nnodes: {c: {kind: client}, d: {kind: client}}\nlinks: [{endpoints: [c:eth0, d:eth0], ipv4: [" + long + ", 10.0.0.2/24]}]\n",
		"vip":   "name: t\nnodes: {c: {kind: client}}\nvips: [{address: " + long + ", port: 80, lb: c, reals: [c]}]\n",
		"port":  "name: t\nnodes: {c: {kind: client}}\nvips: [{address: 10.0.0.1, port: 1" + strings.Repeat("0", 10000) + ", lb: c, reals: [c]}]\n",
		"depth": "name: t\nnodes: {c: {kind: client, exec: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			topo, err := parseHostile(t, []byte(doc), name+".yaml")
			// A 1 MiB command is a valid, if odd, command.
			if name == "cmd" {
				if err != nil || topo.Node("c").Cmd != long {
					t.Errorf("a 1 MiB cmd: %v", firstLines(err, 3))
				}
				return
			}
			if err == nil {
				t.Errorf("parsed")
			}
			if msg := fmt.Sprint(err); len(msg) > 3<<20 {
				t.Errorf("error message of %d bytes", len(msg))
			}
		})
	}
}

// firstLines keeps a failure message readable when err lists thousands of
// problems.
func firstLines(err error, n int) string {
	lines := strings.SplitN(fmt.Sprint(err), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
