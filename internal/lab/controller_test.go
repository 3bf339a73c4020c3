package lab

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// fastChecks is dsr-3reals with checks quick enough for a test.
func fastChecks(t *testing.T) *topology.Topology {
	t.Helper()
	data, err := os.ReadFile("../../labs/dsr-3reals.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "healthcheck: {type: tcp}", "healthcheck: {type: tcp, interval: 100ms, timeout: 50ms, fall: 2, rise: 2}")
	text = strings.ReplaceAll(text, "healthcheck: {type: udp-echo}", "healthcheck: {type: udp-echo, interval: 100ms, timeout: 50ms, fall: 2, rise: 2}")
	return parseLab(t, text)
}

// startController runs the lab's controller in-process (the fake runtime
// has no engine to run its container) until the test ends or stop is
// called.
func startController(t *testing.T, rt runtime.Runtime, topo *topology.Topology) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	c := &Controller{Lab: topo.Name, Log: t.Output(), Namespace: func(n *topology.Node) (*netconf.Namespace, error) {
		return rt.Namespace(ctx, n.ContainerName)
	}}
	go func() {
		defer wg.Done()
		if err := c.Run(ctx); err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

// waitHealth waits until health.json satisfies cond; the bound is generous
// (a shared machine), what is checked is that it happens.
func waitHealth(t *testing.T, lab, what string, cond func(health.State) bool) health.State {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := health.ReadState(labDir(lab))
		if err != nil {
			t.Fatal(err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %s: %+v", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusIs(vip, real string, want health.Status) func(health.State) bool {
	return func(st health.State) bool {
		r, ok := st.Of(health.Key{VIP: vip, Katran: "katran", Real: real})
		return ok && r.Status == want
	}
}

func allUp(st health.State) bool {
	if len(st.Reals) != 5 {
		return false
	}
	for _, r := range st.Reals {
		if r.Status != health.Up {
			return false
		}
	}
	return true
}

// waitWeights waits until the balancer's weights for vip meet cond, and
// returns them.
func waitWeights(t *testing.T, rt runtime.Runtime, topo *topology.Topology, vip, what string, cond func(map[string]uint32) bool) map[string]uint32 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w := balancerWeights(t, rt, topo, vip)
		if cond(w) {
			return w
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %s: weights %v", what, w)
		}
		time.Sleep(controllerTick)
	}
}

// balancerWeights reads katran's weights of a VIP's reals, by real.
func balancerWeights(t *testing.T, rt runtime.Runtime, topo *topology.Topology, vip string) map[string]uint32 {
	t.Helper()
	ns := nodeNamespace(t, rt, topo, "katran")
	lb, _, err := openBalancer(ns, "eth0")
	if err != nil || lb == nil {
		t.Fatalf("katran's balancer: %v", err)
	}
	defer lb.Close()
	vips, err := lb.VIPs()
	if err != nil {
		t.Fatal(err)
	}
	byAddr := map[netip.Addr]string{}
	for _, r := range topo.NodesOfKind(topology.KindReal) {
		byAddr[r.Uplink().Addr.Addr()] = r.Name
	}
	out := map[string]uint32{}
	for v, reals := range vips {
		if v.String() == strings.TrimSuffix(vip, "/tcp") || v.String() == vip {
			for _, r := range reals {
				out[byAddr[r.Addr]] = r.Weight
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no VIP %s in %v", vip, vips)
	}
	return out
}

func breakDecap(t *testing.T, rt runtime.Runtime, topo *topology.Topology, real string) {
	t.Helper()
	ns := nodeNamespace(t, rt, topo, real)
	att, err := ns.XDP("eth0")
	if err != nil || att.Mode == 0 {
		t.Skipf("%s does not decapsulate in XDP here (%v, %v)", real, att, err)
	}
	if err := ns.DetachXDP("eth0", att.Mode); err != nil {
		t.Fatal(err)
	}
}

func eventsOf(t *testing.T, lab, typ string) []health.Event {
	t.Helper()
	evs, _, err := health.ReadEvents(labDir(lab), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []health.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// The controller takes a failing real out of the ring and puts it back;
// an operator's drain stays; up keeps a down real out; every real down
// fails open; a restarted controller goes on from health.json.
func TestControllerDrainsFailingRealsAndRestoresThem(t *testing.T) {
	rt := fakeLab(t)
	topo := fastChecks(t)
	mustUp(t, rt, topo)
	stop := startController(t, rt, topo)
	const tcp, udp = "192.168.10.1:50007/tcp", "192.168.10.2:50008/udp"
	waitHealth(t, topo.Name, "all up", allUp)

	// real2 loses its decapsulation: its service still runs, its checks
	// fail, and katran gives it no new flows.
	breakDecap(t, rt, topo, "real2")
	waitHealth(t, topo.Name, "real2 down", statusIs(tcp, "real2", health.Down))
	if w := balancerWeights(t, rt, topo, tcp); w["real2"] != 0 || w["real1"] != 1 || w["real3"] != 2 {
		t.Errorf("weights with real2 down: %v, want real2 0, the others as recorded", w)
	}
	if evs := eventsOf(t, topo.Name, "health"); !containsEvent(evs, tcp, "real2", health.Down) {
		t.Errorf("no event of real2 going down: %+v", evs)
	}

	// The operator drains real1, which is healthy: up writes the weights,
	// keeps real2 out (it is still down) and real1 at 0.
	v, err := FindVIP(topo, tcp)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetRealWeight(topo, v, "real1", 0); err != nil {
		t.Fatal(err)
	}
	// up repairs real2's decapsulation too, and real2 may come back while
	// up still runs: the controller, which still follows the topology up
	// replaces, writes no weights while up holds the lab's lock (as the
	// command does), so the drain holds from the moment up returns.
	unlock, err := Lock(topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	mustUp(t, rt, topo)
	unlock()
	for range 10 {
		if w := balancerWeights(t, rt, topo, tcp); w["real1"] != 0 {
			t.Fatalf("weights after the drain: %v, want real1 (drained) at 0", w)
		}
		time.Sleep(controllerTick)
	}
	waitHealth(t, topo.Name, "real2 up again", statusIs(tcp, "real2", health.Up))
	// Its weight comes back at the controller's next tick with the lock.
	w := waitWeights(t, rt, topo, tcp, "real2 back", func(w map[string]uint32) bool { return w["real2"] == 1 })
	if w["real1"] != 0 {
		t.Errorf("weights with real2 back: %v, want real1 still drained", w)
	}

	// Both reals of the UDP VIP fail: katran keeps both (fail open).
	breakDecap(t, rt, topo, "real1")
	breakDecap(t, rt, topo, "real2")
	st := waitHealth(t, topo.Name, "the UDP VIP failing open", func(st health.State) bool {
		return statusIs(udp, "real1", health.Down)(st) && statusIs(udp, "real2", health.Down)(st) && len(st.FailOpen) > 0
	})
	if w := balancerWeights(t, rt, topo, udp); w["real1"] != 1 || w["real2"] != 1 {
		t.Errorf("weights of a VIP failing open: %v, want every real kept", w)
	}
	if !containsFailOpen(st, udp) || len(eventsOf(t, topo.Name, "fail-open")) == 0 {
		t.Errorf("fail open not said: %+v", st.FailOpen)
	}

	// A new controller starts from what the last one wrote.
	stop()
	before := waitHealth(t, topo.Name, "recorded", func(health.State) bool { return true })
	startController(t, rt, topo)
	after := waitHealth(t, topo.Name, "rewritten by the new controller", func(st health.State) bool { return st.Updated.After(before.Updated) })
	if r, _ := after.Of(health.Key{VIP: udp, Katran: "katran", Real: "real1"}); r.Status != health.Down || r.Transitions == 0 {
		t.Errorf("restarted controller forgot real1's health: %+v", r)
	}
	if n := len(eventsOf(t, topo.Name, "controller")); n != 2 {
		t.Errorf("%d controller start events, want 2", n)
	}

	// One stream, in time order: the containers' starts from the engine,
	// then the health transitions from the controller's file.
	var stream []health.Event
	if err := Events(context.Background(), one(rt), topo.Name, time.Time{}, false, func(e health.Event) error {
		stream = append(stream, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range stream {
		seen[e.Type+" "+e.Container+e.Real+" "+e.Action+string(e.To)] = true
		if i > 0 && e.Time.Before(stream[i-1].Time) {
			t.Errorf("event %d (%+v) is older than the one before it", i, e)
		}
	}
	for _, want := range []string{"container dsr3-katran start", "container dsr3-dsrlab-controller start", "health real2 down", "health real2 up"} {
		if !seen[want] {
			t.Errorf("events lack %q: %v", want, seen)
		}
	}
}

func containsEvent(evs []health.Event, vip, real string, to health.Status) bool {
	for _, e := range evs {
		if e.VIP == vip && e.Real == real && e.To == to {
			return true
		}
	}
	return false
}

func containsFailOpen(st health.State, vip string) bool {
	for _, fo := range st.FailOpen {
		if fo.VIP == vip {
			return true
		}
	}
	return false
}

// A real that fails while another dsrlab process holds the lab's lock is
// found down at once, and drained once the lock is free.
func TestControllerWaitsForTheLabsLock(t *testing.T) {
	rt := fakeLab(t)
	topo := fastChecks(t)
	mustUp(t, rt, topo)
	startController(t, rt, topo)
	const tcp = "192.168.10.1:50007/tcp"
	waitHealth(t, topo.Name, "all up", allUp)

	unlock, err := Lock(topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	breakDecap(t, rt, topo, "real2")
	waitHealth(t, topo.Name, "real2 down", statusIs(tcp, "real2", health.Down))
	time.Sleep(3 * controllerTick)
	if w := balancerWeights(t, rt, topo, tcp); w["real2"] == 0 {
		t.Errorf("weights written while the lab's lock was held: %v", w)
	}
	unlock()
	waitWeights(t, rt, topo, tcp, "real2 at 0 once the lock is free", func(w map[string]uint32) bool { return w["real2"] == 0 })
}
