package lab

import (
	"context"
	"fmt"
	"slices"

	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// ExecAgent runs argv in the lab's agent container on host (image.BinaryPath
// first, for dsrlab itself) with stdio, and returns its exit code: the one
// way commands reach into another host's namespaces.
func ExecAgent(ctx context.Context, rts runtime.Set, t *topology.Topology, host string, argv []string, stdio runtime.ExecIO) (int, error) {
	rt := rts[host]
	if rt == nil {
		return -1, fmt.Errorf("host %s: no engine to reach it", host)
	}
	agents, err := rt.List(ctx, map[string]string{LabelLab: t.Name, LabelRole: roleAgent})
	if err != nil {
		return -1, fmt.Errorf("host %s: %w", host, err)
	}
	if len(agents) == 0 || !agents[0].Running() {
		return -1, fmt.Errorf("no dsrlab agent runs on host %s; `dsrlab up` starts it", host)
	}
	// The agent runs the dsrlab of its image: another dsrlab's would not
	// know what this one asks of it, or worse, take it for something else.
	want, err := image.Digest()
	if err != nil {
		return -1, err
	}
	if agents[0].Labels[image.DigestLabel] != want {
		return -1, fmt.Errorf("the dsrlab agent on host %s was started by another dsrlab; `dsrlab up` replaces it", host)
	}
	return rt.Exec(ctx, agents[0].ID, argv, stdio)
}

// NamespacePaths names the network namespace of each of the lab's nodes
// on host (or of only those named), by node name, as a file on that host:
// the agent there opens them (netconf.FromPath).
func NamespacePaths(ctx context.Context, rts runtime.Set, t *topology.Topology, host string, only ...string) (map[string]string, error) {
	rt := rts[host]
	if rt == nil {
		return nil, fmt.Errorf("host %s: no engine to reach it", host)
	}
	paths := map[string]string{}
	for _, n := range t.Nodes {
		if n.Host.Name != host || len(only) > 0 && !slices.Contains(only, n.Name) {
			continue
		}
		p, err := rt.NamespacePath(ctx, n.ContainerName)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		paths[n.Name] = p
	}
	return paths, nil
}
