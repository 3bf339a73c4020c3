//go:build !linux

package main

import (
	"context"
	"runtime"

	"github.com/dsrlab/dsrlab/topology"
)

// checkPrograms: BPF objects are opened on Linux only.
func checkPrograms(_ context.Context, topo *topology.Topology) ([]string, error) {
	var notes []string
	for _, n := range topo.Nodes {
		if n.Program != nil {
			notes = append(notes, n.Program.FilePos.String()+": program not checked: BPF programs are compiled and opened on Linux, not "+runtime.GOOS)
		}
	}
	return notes, nil
}
