package lab

import (
	"context"
	"fmt"

	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// FailMode is how `dsrlab fail` takes a node out of a running lab: the ways
// a machine of a tier goes away.
type FailMode string

const (
	// FailKill is a crash: SIGKILL of the node's container. Nothing in it
	// says goodbye; its BGP sessions end when the router's hold timer
	// expires, or at once where its links vanish with it (veths do).
	FailKill FailMode = "kill"
	// FailStop is a clean shutdown: SIGTERM first, so a katran's speaker
	// withdraws its VIPs before the container stops.
	FailStop FailMode = "stop"
	// FailLink sets the node's interfaces down, its processes running: a
	// cut cable. The router's end loses its carrier, so its kernel stops
	// using that next hop at once; BGP withdraws it at the hold time.
	FailLink FailMode = "link"
)

// Fail takes node out of the running lab t as a failing machine would.
// Recover (which is up) brings it back.
func Fail(ctx context.Context, rts runtime.Set, t *topology.Topology, node string, how FailMode) error {
	n := t.Node(node)
	if n == nil {
		return fmt.Errorf("lab %q has no node %q", t.Name, node)
	}
	rt := rts[n.Host.Name]
	c, err := rt.Inspect(ctx, n.ContainerName)
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	if !c.Running() {
		return fmt.Errorf("node %s is not running (container %s is %s): `dsrlab recover %s` brings it back", node, c.Name, c.State, node)
	}
	switch how {
	case FailKill, FailStop:
		return rt.Stop(ctx, c.ID, how == FailKill)
	case FailLink:
		ns, err := NodeNamespace(ctx, rts, t, node)
		if err != nil {
			return err
		}
		defer ns.Close()
		for _, i := range n.Interfaces {
			if err := ns.SetLinkUp(i.Name, false); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("--how %q: want kill, stop or link", how)
}
