//go:build linux

package bpf

import (
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// A flow whose packets move CPU, as on veth, where a packet runs on the
// CPU its sender ran on: each CPU has its own copy of the connection
// table, and a packet that finds none on its CPU must find the flow in
// another CPU's, or a drained real's connections break. These tests run a
// flow's packets on testCPU and otherCPU.

// requireOtherCPU skips tb unless the kernel has a second CPU and this
// process may run on it.
func requireOtherCPU(tb testing.TB) {
	tb.Helper()
	possible, err := ebpf.PossibleCPU()
	if err != nil {
		tb.Fatal(err)
	}
	if possible <= otherCPU {
		tb.Skipf("needs CPUs %d and %d, the kernel has %d possible CPU(s)", testCPU, otherCPU, possible)
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		tb.Fatalf("get CPU affinity: %v", err)
	}
	if !allowed.IsSet(testCPU) || !allowed.IsSet(otherCPU) {
		tb.Skipf("needs CPUs %d and %d, this process may run on %d CPU(s) only", testCPU, otherCPU, allowed.Count())
	}
}

func TestLRUDrainedFlowMovesCPU(t *testing.T) {
	requireOtherCPU(t)
	b := newConfigured(t)
	a, drained := realAt(0), realAt(1)
	both := newRing(t, equal(a, drained))
	f := flowsOf(t, tcpFlow, 1, func(f flow) bool { return both.owner(f) == drained })[0]
	setVIP(t, b, tcpVIP, equal(a, drained))
	if got := encapsulatedToOn(t, testCPU, b, f, withSYN); got != drained {
		t.Fatalf("SYN on CPU %d: sent to %s, want the ring's %s", testCPU, got, drained)
	}

	setVIP(t, b, tcpVIP, []Real{{Addr: a, Weight: 1}, {Addr: drained, Weight: 0}})
	before := stats(t, b)
	// The connection goes on, on the other CPU, which never saw it.
	if got := encapsulatedToOn(t, otherCPU, b, f); got != drained {
		t.Fatalf("established flow moved to CPU %d after drain: sent to %s, want %s", otherCPU, got, drained)
	}
	// That CPU now has its own copy: its next packet hits locally.
	if got := encapsulatedToOn(t, otherCPU, b, f); got != drained {
		t.Fatalf("second packet on CPU %d: sent to %s, want %s", otherCPU, got, drained)
	}
	after := stats(t, b)
	if d := after.LRURemoteHits - before.LRURemoteHits; d != 1 {
		t.Errorf("%d remote LRU hits, want 1 (the first packet on CPU %d)", d, otherCPU)
	}
	if d := after.LRUHits - before.LRUHits; d != 1 {
		t.Errorf("%d LRU hits, want 1 (the second packet on CPU %d)", d, otherCPU)
	}
	if d := after.LRUMisses - before.LRUMisses; d != 0 {
		t.Errorf("%d LRU misses, want 0", d)
	}
	if got := encapsulatedToOn(t, testCPU, b, f); got != drained {
		t.Errorf("back on CPU %d: sent to %s, want %s", testCPU, got, drained)
	}

	// A SYN on the 5-tuple is a new connection: the ring's choice, which
	// avoids the drained real, on whichever CPU its packets run.
	if got := encapsulatedToOn(t, otherCPU, b, f, withSYN); got != a {
		t.Fatalf("SYN on CPU %d: sent to %s, want %s (not the drained real)", otherCPU, got, a)
	}
	for _, cpu := range []int{testCPU, otherCPU} {
		if got := encapsulatedToOn(t, cpu, b, f); got != a {
			t.Errorf("new connection's packet on CPU %d: sent to %s, want %s", cpu, got, a)
		}
	}
}

// A removed real frees its slot: no CPU's copy may bring its flows back,
// nor hand them to the next real given the slot.
func TestLRURemoteEntryOfRemovedReal(t *testing.T) {
	requireOtherCPU(t)
	b := newConfigured(t)
	a, removed, newcomer := realAt(0), realAt(1), realAt(2)
	both := newRing(t, equal(a, removed))
	reused := newRing(t, equal(a, newcomer))
	// Flows the ring with the newcomer gives to a, so that reaching the
	// newcomer can only mean an inherited pin.
	flows := flowsOf(t, tcpFlow, 2, func(f flow) bool { return both.owner(f) == removed && reused.owner(f) == a })
	setVIP(t, b, tcpVIP, equal(a, removed))
	for _, f := range flows {
		if got := encapsulatedToOn(t, testCPU, b, f); got != removed {
			t.Fatalf("flow %v on CPU %d: sent to %s, want %s", f, testCPU, got, removed)
		}
	}
	oldSlot := slotOf(t, b, removed)

	setVIP(t, b, tcpVIP, equal(a))
	if got := encapsulatedToOn(t, otherCPU, b, flows[0]); got != a {
		t.Errorf("flow of the removed real on CPU %d: sent to %s, want %s", otherCPU, got, a)
	}

	// No packet of flows[1] in between: CPU 0's copy still names the slot.
	setVIP(t, b, tcpVIP, equal(a, newcomer))
	if got := slotOf(t, b, newcomer); got != oldSlot {
		t.Fatalf("newcomer got slot %d, not the freed %d; the test needs the reuse", got, oldSlot)
	}
	before := stats(t, b)
	if got := encapsulatedToOn(t, otherCPU, b, flows[1]); got != a {
		t.Errorf("flow of the removed real on CPU %d after its slot was reused: sent to %s, want %s", otherCPU, got, a)
	}
	if d := stats(t, b).LRURemoteHits - before.LRURemoteHits; d != 0 {
		t.Errorf("%d remote LRU hits, want 0: the pin is for the slot's previous real", d)
	}
}

func TestConfigureRecordsPossibleCPUs(t *testing.T) {
	b := newConfigured(t)
	want, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	var cfg balancerLbConfig
	if err := b.objs.Config.Lookup(configKey, &cfg); err != nil {
		t.Fatal(err)
	}
	if int(cfg.PossibleCpus) != want {
		t.Errorf("config says %d possible CPUs, the kernel %d", cfg.PossibleCpus, want)
	}
}
