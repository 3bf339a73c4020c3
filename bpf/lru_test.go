//go:build linux

package bpf

import (
	"net/netip"
	"testing"
)

// The connection table's rules, each against the Maglev ring's answer:
// a flow the LRU remembers keeps its real across changes that leave the
// real in the VIP (added reals, drain), and loses it when the real is
// removed. Every test here runs on one CPU (BPF_PROG_TEST_RUN), so the
// per-CPU table behaves as one table; lru_cpus_test.go moves flows between
// CPUs.

// withSYN makes the packet a TCP SYN: the start of a new connection.
func withSYN(p *ipv4Packet) {
	p.payload[tcpFlagsOffset] = tcpFlagSYN
}

// establish sends one packet of each flow and checks it reached want.
func establish(t *testing.T, b *Balancer, flows []flow, want netip.Addr) {
	t.Helper()
	for _, f := range flows {
		if got := encapsulatedTo(t, b, f); got != want {
			t.Fatalf("flow %v: sent to %s, want %s", f, got, want)
		}
	}
}

func stats(tb testing.TB, b *Balancer) Stats {
	tb.Helper()
	s, err := b.Stats()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestLRUKeepsFlowsWhenRealsAreAdded(t *testing.T) {
	b := newConfigured(t)
	a, c := realAt(0), realAt(1)
	grown := newRing(t, equal(a, c))
	// Flows the grown ring gives to the new real: without the LRU they
	// would all move.
	flows := flowsOf(t, tcpFlow, 20, func(f flow) bool { return grown.owner(f) == c })
	setVIP(t, b, tcpVIP, equal(a))
	establish(t, b, flows[:10], a)

	setVIP(t, b, tcpVIP, equal(a, c))
	before := stats(t, b)
	establish(t, b, flows[:10], a)
	establish(t, b, flows[10:], c)
	after := stats(t, b)
	if hits := after.LRUHits - before.LRUHits; hits != 10 {
		t.Errorf("%d LRU hits, want 10 (the established flows)", hits)
	}
	if misses := after.LRUMisses - before.LRUMisses; misses != 10 {
		t.Errorf("%d LRU misses, want 10 (the new flows)", misses)
	}
}

func TestLRUDrainKeepsEstablishedFlows(t *testing.T) {
	b := newConfigured(t)
	a, drained := realAt(0), realAt(1)
	both := newRing(t, equal(a, drained))
	flows := flowsOf(t, tcpFlow, 20, func(f flow) bool { return both.owner(f) == drained })
	setVIP(t, b, tcpVIP, equal(a, drained))
	establish(t, b, flows[:10], drained)

	setVIP(t, b, tcpVIP, []Real{{Addr: a, Weight: 1}, {Addr: drained, Weight: 0}})
	establish(t, b, flows[:10], drained)
	// New flows the drained real used to get go to the other one.
	establish(t, b, flows[10:], a)
	// A SYN reopening a remembered 5-tuple is a new connection too; its
	// later packets follow it.
	if got := encapsulatedTo(t, b, flows[0], withSYN); got != a {
		t.Errorf("SYN on a 5-tuple pinned to the drained real: sent to %s, want %s", got, a)
	}
	establish(t, b, flows[:1], a)

	// Undraining changes nothing for flows already placed.
	setVIP(t, b, tcpVIP, equal(a, drained))
	establish(t, b, flows[1:10], drained)
	establish(t, b, flows[10:], a)
}

// A VIP whose reals are all drained takes no new flows but keeps serving
// the established ones.
func TestLRUFullyDrainedVIP(t *testing.T) {
	b := newConfigured(t)
	a := realAt(0)
	flows := manyFlows(udpFlow, 2)
	setVIP(t, b, udpVIP, equal(a))
	establish(t, b, flows[:1], a)

	setVIP(t, b, udpVIP, []Real{{Addr: a, Weight: 0}})
	establish(t, b, flows[:1], a)
	if got, _ := runXDP(t, b.Program(), flows[1].frame()); got != xdpDrop {
		t.Errorf("new flow to a fully drained vip: %s, want XDP_DROP", got)
	}
}

func TestLRURemovedRealLosesItsFlows(t *testing.T) {
	b := newConfigured(t)
	stays, removed := realAt(0), realAt(1)
	both := newRing(t, equal(stays, removed))
	onStays := flowsOf(t, udpFlow, 10, func(f flow) bool { return both.owner(f) == stays })
	onRemoved := flowsOf(t, udpFlow, 10, func(f flow) bool { return both.owner(f) == removed })
	setVIP(t, b, udpVIP, equal(stays, removed))
	establish(t, b, onStays, stays)
	establish(t, b, onRemoved, removed)

	setVIP(t, b, udpVIP, equal(stays))
	establish(t, b, onRemoved, stays)
	establish(t, b, onStays, stays)
}

// A removed real's slot goes to the next real added, under a new
// generation: a flow still pinned to the old occupant must be hashed
// again, not handed to the newcomer.
func TestLRUReusedSlotIsNotInherited(t *testing.T) {
	b := newConfigured(t)
	a, old, newcomer := realAt(0), realAt(1), realAt(2)
	before := newRing(t, equal(a, old))
	after := newRing(t, equal(a, newcomer))
	f := flowsOf(t, tcpFlow, 1, func(f flow) bool { return before.owner(f) == old && after.owner(f) == a })[0]
	setVIP(t, b, tcpVIP, equal(a, old))
	establish(t, b, []flow{f}, old)
	oldSlot := slotOf(t, b, old)

	// No packet of f in between: its LRU entry still names old's slot.
	setVIP(t, b, tcpVIP, equal(a))
	setVIP(t, b, tcpVIP, equal(a, newcomer))
	if got := slotOf(t, b, newcomer); got != oldSlot {
		t.Fatalf("newcomer got slot %d, not the freed %d; the test needs the reuse", got, oldSlot)
	}
	establish(t, b, []flow{f}, a)
}

func slotOf(tb testing.TB, b *Balancer, addr netip.Addr) int {
	tb.Helper()
	slots, err := b.readSlots()
	if err != nil {
		tb.Fatal(err)
	}
	for s, def := range slots {
		if def.Addr == addrWords(addr) {
			return s
		}
	}
	tb.Fatalf("%s has no slot", addr)
	return 0
}

// ForgetTraffic leaves the balancer as configured: a flow it had pinned
// to a real that is now drained is balanced afresh, and every counter
// starts from zero again.
func TestForgetTraffic(t *testing.T) {
	b := newConfigured(t)
	a, c := realAt(0), realAt(1)
	setVIP(t, b, tcpVIP, equal(a))
	flows := flowsOf(t, tcpFlow, 1, func(flow) bool { return true })
	establish(t, b, flows, a)
	setVIP(t, b, tcpVIP, []Real{{Addr: a, Weight: 0}, {Addr: c, Weight: 1}})
	establish(t, b, flows, a) // drained: established flows stay

	if err := b.ForgetTraffic(); err != nil {
		t.Fatal(err)
	}
	s := stats(t, b)
	if s.Encapsulated != 0 || s.LRUHits != 0 || s.LRUMisses != 0 || s.VIPs[tcpVIP].Packets != 0 || s.Reals[a].Packets != 0 {
		t.Errorf("counters after ForgetTraffic: %+v", s)
	}
	establish(t, b, flows, c) // forgotten: a new flow, the drained real gets none
	if s := stats(t, b); s.LRUMisses != 1 || s.Reals[c].Packets != 1 {
		t.Errorf("after one new flow: %d misses, %d packets to %s", s.LRUMisses, s.Reals[c].Packets, c)
	}
}
