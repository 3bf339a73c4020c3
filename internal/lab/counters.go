package lab

import (
	"context"
	"fmt"
	"sort"

	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// NodeCounters are the interface counters of one node at one moment, or
// why there are none.
type NodeCounters struct {
	Node string `json:"node"`
	// State is the container's ("running", "exited", ...), or
	// StateMissing when the lab has no container for the node.
	State      string             `json:"state"`
	Interfaces []netconf.Counters `json:"interfaces,omitempty"`
	Error      string             `json:"error,omitempty"`
}

// StateMissing is the state of a node whose container is gone.
const StateMissing = "missing"

// Counters reads the counters of every interface of every node of a
// running lab, as stats and verify read one: from the kernel on this host,
// through dsrlab's agent on the others. A node whose container does not
// run has no counters, only its state; so does a node whose namespace
// could not be read (Error says why). The error is for the lab as a whole
// (an engine that does not answer).
func Counters(ctx context.Context, rts runtime.Set, t *topology.Topology) ([]NodeCounters, error) {
	var out []NodeCounters
	for _, h := range HostsInUse(t) {
		rt := rts[h]
		if rt == nil {
			return nil, fmt.Errorf("host %s: no engine to reach it", h)
		}
		list, err := rt.List(ctx, map[string]string{LabelLab: t.Name})
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h, err)
		}
		byNode := map[string]runtime.Container{}
		for _, c := range list {
			if c.Labels[LabelRole] != roleAgent {
				byNode[c.Labels[LabelNode]] = c
			}
		}
		var running []string
		at := map[string]int{} // index in out, by node
		for _, n := range t.Nodes {
			if n.Host.Name != h {
				continue
			}
			nc := NodeCounters{Node: n.Name, State: StateMissing}
			if c, ok := byNode[n.Name]; ok {
				nc.State = c.State
				if c.Running() {
					running = append(running, n.Name)
				}
			}
			at[n.Name] = len(out)
			out = append(out, nc)
		}
		read, err := countersOn(ctx, rts, t, h, running)
		if err != nil {
			for _, n := range running {
				out[at[n]].Error = err.Error()
			}
			continue
		}
		for _, r := range read {
			out[at[r.Node]] = r
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// countersOn reads the named running nodes of host: here, or through the
// agent there.
func countersOn(ctx context.Context, rts runtime.Set, t *topology.Topology, host string, nodes []string) ([]NodeCounters, error) {
	if len(nodes) == 0 {
		return nil, nil
	}
	if host != topology.LocalHost {
		res, err := agentCall(ctx, rts, t, host, AgentRequest{Phase: phaseCounters, Nodes: nodes})
		if err != nil {
			return nil, err
		}
		return res.Counters, nil
	}
	out := make([]NodeCounters, len(nodes))
	for i, name := range nodes {
		ns, err := NodeNamespace(ctx, rts, t, name)
		if err != nil {
			out[i] = NodeCounters{Node: name, State: "running", Error: err.Error()}
			continue
		}
		out[i] = nodeCounters(name, ns)
		ns.Close()
	}
	return out, nil
}

func nodeCounters(node string, ns *netconf.Namespace) NodeCounters {
	nc := NodeCounters{Node: node, State: "running"}
	ifaces, err := ns.AllCounters()
	if err != nil {
		nc.Error = err.Error()
	}
	nc.Interfaces = ifaces
	return nc
}
