package labs_test

import (
	"testing"

	"github.com/dsrlab/dsrlab/labs"
	"github.com/dsrlab/dsrlab/topology"
)

func TestReferenceParses(t *testing.T) {
	topo, err := topology.Parse(labs.Reference, labs.ReferenceFile)
	if err != nil {
		t.Fatalf("the reference lab does not parse:\n%v", err)
	}
	if topo.Name != "dsr" || topo.File != labs.ReferenceFile || len(topo.Nodes) != 4 || len(topo.VIPs) != 1 {
		t.Errorf("reference lab: name %q, file %q, %d nodes, %d VIPs", topo.Name, topo.File, len(topo.Nodes), len(topo.VIPs))
	}
}
