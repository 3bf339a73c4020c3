package lab

import (
	"context"
	"fmt"

	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// NodeNamespace opens the network namespace of a node's running container,
// for commands that look into one node (stats, map, capture).
func NodeNamespace(ctx context.Context, rt runtime.Runtime, t *topology.Topology, node string) (*netconf.Namespace, error) {
	n := t.Node(node)
	if n == nil {
		return nil, fmt.Errorf("lab %q has no node %q", t.Name, node)
	}
	ns, err := rt.Namespace(ctx, n.ContainerName)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	return ns, nil
}
