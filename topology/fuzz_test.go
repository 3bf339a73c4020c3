package topology_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dsrlab/dsrlab/topology"
)

// FuzzParse feeds Parse arbitrary files, starting from every fixture and
// lab. Parse must not panic; a failure must be a positioned ErrorList; a
// success must survive a round trip through Resolved unchanged.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml", "../labs/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, files...)
	}
	for _, file := range seeds {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := topology.Parse(data, "fuzz.yaml")
		if err != nil {
			var list topology.ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T is not a non-empty ErrorList: %v", err, err)
			}
			for _, e := range list {
				if e == nil || e.File != "fuzz.yaml" || e.Line < 0 || e.Column < 0 || e.Msg == "" {
					t.Fatalf("malformed error %#v", e)
				}
			}
			return
		}
		first, err := topo.Resolved()
		if err != nil {
			t.Fatalf("Resolved: %v", err)
		}
		again, err := topology.Parse(first, "resolved.yaml")
		if err != nil {
			t.Fatalf("Parse(Resolved()):\n%v\n%s", err, first)
		}
		second, err := again.Resolved()
		if err != nil {
			t.Fatalf("Resolved of the reparse: %v", err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("Resolved changed after a round trip:\n%s\nthen:\n%s", first, second)
		}
	})
}
