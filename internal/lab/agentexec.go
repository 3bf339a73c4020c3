package lab

import (
	"context"
	"fmt"

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
	return rt.Exec(ctx, agents[0].ID, argv, stdio)
}

// NamespacePaths names the network namespace of each of the lab's nodes
// on host, by node name, as a file on that host: the agent there opens
// them (netconf.FromPath).
func NamespacePaths(ctx context.Context, rts runtime.Set, t *topology.Topology, host string) (map[string]string, error) {
	rt := rts[host]
	if rt == nil {
		return nil, fmt.Errorf("host %s: no engine to reach it", host)
	}
	paths := map[string]string{}
	for _, n := range t.Nodes {
		if n.Host.Name != host {
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
