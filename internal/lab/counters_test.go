package lab

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

func iface(t *testing.T, all []NodeCounters, node, name string) netconf.Counters {
	t.Helper()
	for _, nc := range all {
		if nc.Node != node {
			continue
		}
		for _, c := range nc.Interfaces {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("node %s has no counters for %s (state %s, error %q)", node, name, nc.State, nc.Error)
	}
	t.Fatalf("no counters for node %s", node)
	return netconf.Counters{}
}

// TestCountersSeeTheDSRAsymmetry: the counters Counters reads are the
// kernel's, so verify's exchange shows in them the way DSR flows: the
// requests cross katran's link both ways (in, and back out encapsulated),
// the replies leave the real, and none come back through katran.
func TestCountersSeeTheDSRAsymmetry(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	ctx := context.Background()
	before, err := Counters(ctx, one(rt), topo)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != len(topo.Nodes) {
		t.Fatalf("counters of %d nodes, want %d", len(before), len(topo.Nodes))
	}
	mustVerify(t, rt, topo)
	after, err := Counters(ctx, one(rt), topo)
	if err != nil {
		t.Fatal(err)
	}
	delta := func(node, name string, tx bool) uint64 {
		b, a := iface(t, before, node, name), iface(t, after, node, name)
		if tx {
			return a.TxBytes - b.TxBytes
		}
		return a.RxBytes - b.RxBytes
	}
	katranIn, katranOut := delta("katran", "eth0", false), delta("katran", "eth0", true)
	realOut := delta("real", "eth0", true)
	if katranIn < verifyPayload || katranOut < verifyPayload || realOut < verifyPayload {
		t.Errorf("katran in %d / out %d, real out %d bytes: want at least the %d-byte payload each", katranIn, katranOut, realOut, verifyPayload)
	}
	if limit := uint64(verifyPayload) * 3 / 2; katranIn > limit || katranOut > limit {
		t.Errorf("katran in %d / out %d bytes, over %d: replies crossed the balancer", katranIn, katranOut, limit)
	}
	for _, c := range after {
		if c.State != "running" || c.Error != "" {
			t.Errorf("node %s: state %s, error %q", c.Node, c.State, c.Error)
		}
	}
}

// TestCountersOfStoppedAndMissingNodes: a stopped container has its state
// and no counters, a removed one is missing; the others are still read.
func TestCountersOfStoppedAndMissingNodes(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	if err := rt.Stop(context.Background(), topo.Node("real").ContainerName, false); err != nil {
		t.Fatal(err)
	}
	c, err := rt.Inspect(context.Background(), topo.Node("katran").ContainerName)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	all, err := Counters(context.Background(), one(rt), topo)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	for _, nc := range all {
		state[nc.Node] = nc.State
		if nc.State != "running" && len(nc.Interfaces) > 0 {
			t.Errorf("node %s is %s but has counters", nc.Node, nc.State)
		}
	}
	if state["real"] != "exited" || state["katran"] != StateMissing || state["router"] != "running" {
		t.Errorf("states %v: want real exited, katran %s, router running", state, StateMissing)
	}
	// The router's link to the client: its links to the stopped real and
	// the removed katran go when the kernel gets to tearing their
	// namespaces down, which may be before or after this read.
	iface(t, all, "router", "eth2")
}

// TestAgentReadsCounters: the agent's side of Counters on another host
// reads the nodes it is given, in the namespaces the request names.
func TestAgentReadsCounters(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	resolved, err := topo.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	req := AgentRequest{Topology: resolved, File: topo.File, Host: topology.LocalHost, Phase: phaseCounters, Nodes: []string{"katran", "real"}}
	// The fake's namespaces have no path of their own: this process's
	// descriptors of them are paths too.
	_, only := req.namespaces()
	req.Namespaces = map[string]string{}
	for _, node := range only {
		ns, err := rt.Namespace(context.Background(), topo.Node(node).ContainerName)
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		req.Namespaces[node] = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.FD())
	}
	res := RunAgent(context.Background(), req)
	if res.Error != "" {
		t.Fatal(res.Error)
	}
	if len(res.Counters) != 2 {
		t.Fatalf("counters of %d nodes, want katran and real: %+v", len(res.Counters), res.Counters)
	}
	iface(t, res.Counters, "katran", "eth0")
	iface(t, res.Counters, "real", "eth0")
}
