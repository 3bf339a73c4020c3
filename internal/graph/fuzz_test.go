package graph

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dsrlab/dsrlab/topology"
)

// FuzzRender draws every topology Parse accepts: no panic, and the same
// output twice.
func FuzzRender(f *testing.F) {
	var files []string
	for _, pattern := range []string{"../../labs/*.yaml", "../../topology/testdata/valid/*.yaml", "testdata/*.yaml"} {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, matches...)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := topology.Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		// Rendering is deterministic: map iteration must not leak into it.
		first, firstDOT := Mermaid(topo), DOT(topo)
		if second, secondDOT := Mermaid(topo), DOT(topo); first != second || firstDOT != secondDOT {
			t.Fatal("two renderings differ")
		}
	})
}
