package lab

import (
	"context"
	"errors"
	"fmt"

	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// NodeNamespace opens the network namespace of a node's running container,
// for commands that look into one node (stats, map, capture). The node must
// run on this host: another host's kernel is not this process's to enter.
func NodeNamespace(ctx context.Context, rts runtime.Set, t *topology.Topology, node string) (*netconf.Namespace, error) {
	n := t.Node(node)
	if n == nil {
		return nil, fmt.Errorf("lab %q has no node %q", t.Name, node)
	}
	if !n.Host.Local() {
		return nil, fmt.Errorf("node %s runs on host %s: its kernel is not this process's to enter", n.Name, n.Host.Name)
	}
	ns, err := rts[topology.LocalHost].Namespace(ctx, n.ContainerName)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil, fmt.Errorf("lab %q is not up: node %s has no container %s", t.Name, n.Name, n.ContainerName)
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	return ns, nil
}

// nsOpener opens a node's network namespace; the caller closes it.
type nsOpener func(n *topology.Node) (*netconf.Namespace, error)

// localOpener opens the namespaces of the local host's nodes.
func localOpener(ctx context.Context, rts runtime.Set, t *topology.Topology) nsOpener {
	return func(n *topology.Node) (*netconf.Namespace, error) { return NodeNamespace(ctx, rts, t, n.Name) }
}
