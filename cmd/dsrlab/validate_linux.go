//go:build linux

package main

import (
	"context"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/topology"
)

// checkPrograms opens the topology's programs as up would, short of
// loading them.
func checkPrograms(ctx context.Context, topo *topology.Topology) ([]string, error) {
	return lab.CheckPrograms(ctx, topo)
}
