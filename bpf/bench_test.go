//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
)

// BenchmarkXDP measures the balancer per packet on its paths — a flow
// the LRU knows (lru-hit), a flow only another CPU's copy of the LRU knows
// (lru-remote-hit: its packets moved CPU, as on veth), a new connection
// that takes the Maglev ring and is written to the LRU (lru-miss: a TCP
// SYN, which takes the ring's choice even on a 5-tuple the LRU holds; from
// the second iteration on the LRU holds this one, so the figure is that
// of a reopened 5-tuple, written in place), a packet for no VIP (pass) —
// with 1 and with 1M flows in the connection table. ns/packet is the kernel's own
// measurement (BPF_PROG_TEST_RUN's duration, whole nanoseconds), not the
// syscall's.
//
// Why not single runs: with repeat > 1 the kernel runs the program again
// on the packet the previous iteration left (DESIGN.md pitfall 7), which
// after an encapsulation is an IPIP packet the balancer passes. Single
// runs (repeat 1) avoid that but measure the pipeline cold: on this VM
// each one costs 200-300 ns more than the same path inside a repeat loop
// (caches and predictors disturbed by the syscall), which says nothing
// about traffic. So the encap paths run xdp_balancer_bench (bench.bpf.c):
// the same pipeline, compiled from the same header, followed by undoing
// the encapsulation, so every iteration sees the original packet. The
// undo (one head adjustment, one Ethernet header copy) is included: the
// figure is an upper bound. lru-remote-hit runs xdp_balancer_bench_remote,
// which first zeroes the flow's copy on the benchmark's CPU, so that every
// iteration finds the flow on the other CPU; that zeroing is included too.
// The pass path leaves the packet alone and runs xdp_balancer itself.
// "empty" is a program that only returns: the cost of the test-run loop,
// included in every other figure.
//
// Rerun: go test ./bpf/ -run '^$' -bench BenchmarkXDP -benchtime 10000000x (as root)
func BenchmarkXDP(b *testing.B) {
	requireBPF(b)
	stub, err := LoadPass()
	if err != nil {
		skipIfUnsupported(b, err)
		b.Fatal(err)
	}
	b.Cleanup(func() { stub.Close() })
	b.Run("empty", func(b *testing.B) { runRepeated(b, stub, otherAddrFrame(), xdpPass) })

	const bigTable = 1 << 20
	for _, flows := range []int{1, bigTable} {
		lb := newBalancerWith(b, Options{LRUSize: bigTable})
		if err := lb.Configure(katranAddr, routerMAC, labPathMTU); err != nil {
			b.Fatal(err)
		}
		setVIP(b, lb, tcpVIP, equal(realAddr, otherReal, realAt(0), realAt(1)))
		known := knownFlows(b, lb, flows)
		harness, remote := loadHarness(b, lb)
		name := fmt.Sprintf("flows=%d", flows)
		if flows == bigTable {
			name = "flows=1M"
		}

		b.Run(name+"/lru-hit", func(b *testing.B) {
			// The newest entry: filling a full table may have evicted
			// the oldest.
			in := known.frame(flows - 1)
			before := stats(b, lb)
			runRepeated(b, harness, in, xdpTX)
			b.ReportMetric(float64(stats(b, lb).LRUHits-before.LRUHits)/float64(b.N), "hit-ratio")
		})
		b.Run(name+"/lru-remote-hit", func(b *testing.B) {
			requireOtherCPU(b)
			// knownFlows pinned the flow on every CPU; the harness
			// makes testCPU forget it before each iteration.
			in := known.frame(flows - 1)
			before := stats(b, lb)
			runRepeated(b, remote, in, xdpTX)
			b.ReportMetric(float64(stats(b, lb).LRURemoteHits-before.LRURemoteHits)/float64(b.N), "remote-hit-ratio")
		})
		b.Run(name+"/lru-miss", func(b *testing.B) {
			fresh := flowFrames{base: tcpFlow, prefix: freshFlowPrefix}
			in := bytes.Clone(fresh.frame(0))
			in[ethHeaderLen+ipv4HeaderLen+tcpFlagsOffset] = tcpFlagSYN
			before := stats(b, lb)
			runRepeated(b, harness, in, xdpTX)
			b.ReportMetric(float64(stats(b, lb).LRUMisses-before.LRUMisses)/float64(b.N), "miss-ratio")
		})
		b.Run(name+"/pass", func(b *testing.B) { runRepeated(b, lb.Program(), otherAddrFrame(), xdpPass) })
	}
	b.Run("ipv6", benchmarkIPv6)
}

// benchmarkIPv6 measures the IPv6 paths with one flow: a hit and a miss of
// an IPv6 VIP encapsulated ip6ip6, a hit of an IPv4 VIP over an IPv6 real
// (4in6), and an IPv6 packet for no VIP.
func benchmarkIPv6(b *testing.B) {
	lb := newBalancer(b)
	for _, src := range []netip.Addr{katranAddr, katran6} {
		if err := lb.Configure(src, routerMAC, labPathMTU); err != nil {
			b.Fatal(err)
		}
	}
	reals := equal(real6, otherReal6, netip.MustParseAddr("fd00:111:222::31"), netip.MustParseAddr("fd00:111:222::41"))
	setVIP(b, lb, tcpVIP6, reals)
	setVIP(b, lb, tcpVIP4in6, reals)
	harness, _ := loadHarness(b, lb)
	hit := func(in []byte) func(b *testing.B) {
		return func(b *testing.B) {
			// One packet on the benchmark's CPU pins the flow there.
			runXDP(b, harness, in)
			before := stats(b, lb)
			runRepeated(b, harness, in, xdpTX)
			b.ReportMetric(float64(stats(b, lb).LRUHits-before.LRUHits)/float64(b.N), "hit-ratio")
		}
	}
	b.Run("ip6ip6/lru-hit", hit(tcpFlow6.frame6()))
	b.Run("4in6/lru-hit", hit(tcpFlow4in6.frame()))
	b.Run("ip6ip6/lru-miss", func(b *testing.B) {
		in := tcpFlow6.frame6()
		in[ethHeaderLen+ipv6HeaderLen+tcpFlagsOffset] = tcpFlagSYN
		before := stats(b, lb)
		runRepeated(b, harness, in, xdpTX)
		b.ReportMetric(float64(stats(b, lb).LRUMisses-before.LRUMisses)/float64(b.N), "miss-ratio")
	})
	other := tcpFlow6
	other.dst = netip.MustParseAddr("fd00:77::2")
	b.Run("pass", func(b *testing.B) { runRepeated(b, lb.Program(), other.frame6(), xdpPass) })
}

// runRepeated runs prog b.N times on in in one test run, on testCPU, and
// reports the kernel's time per run.
func runRepeated(b *testing.B, prog *ebpf.Program, in []byte, want xdpAction) {
	defer pinToTestCPU(b)()
	ret, d, err := prog.Benchmark(in, b.N, nil)
	if err != nil {
		b.Fatal(err)
	}
	if xdpAction(ret) != want {
		b.Fatalf("verdict %s, want %s", xdpAction(ret), want)
	}
	b.ReportMetric(float64(d.Nanoseconds()), "ns/packet")
}

// loadHarness loads xdp_balancer_bench and xdp_balancer_bench_remote on
// lb's maps.
func loadHarness(b *testing.B, lb *Balancer) (harness, remote *ebpf.Program) {
	b.Helper()
	spec, err := loadBench()
	if err != nil {
		b.Fatal(err)
	}
	m := lb.objs.balancerMaps
	shared := map[string]*ebpf.Map{
		benchMapVips: m.Vips, benchMapVipAddrFilter: m.VipAddrFilter, benchMapChRings: m.ChRings, benchMapReals: m.Reals, benchMapLruFlows: m.LruFlows,
		benchMapConfig: m.Config, benchMapVipStats: m.VipStats, benchMapRealStats: m.RealStats,
		benchMapGlobalStats: m.GlobalStats,
	}
	spec.Maps[benchMapLruFlows].MaxEntries = m.LruFlows.MaxEntries()
	var objs benchObjects
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{MapReplacements: shared}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { objs.Close() })
	return objs.XdpBalancerBench, objs.XdpBalancerBenchRemote
}

// Flows are told apart by source address: knownFlowPrefix for the ones
// put into the table before measuring, freshFlowPrefix for new ones.
var (
	knownFlowPrefix = netip.MustParseAddr("172.16.0.0").As4()
	freshFlowPrefix = netip.MustParseAddr("100.64.0.0").As4()
)

// flowFrames makes frame i of base from source address prefix + i.
type flowFrames struct {
	base   flow
	prefix [4]byte
	buf    []byte
	next   int
}

func (f *flowFrames) key(i int) flow {
	src := binary.BigEndian.Uint32(f.prefix[:]) + uint32(i)
	fl := f.base
	fl.src = netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, src)))
	return fl
}

// frame patches the source address into one buffer: the program does not
// read the IP checksum, and the benchmark must not spend its time
// building frames.
func (f *flowFrames) frame(i int) []byte {
	if f.buf == nil {
		f.buf = f.base.frame()
	}
	src := f.key(i).src.As4()
	copy(f.buf[ethHeaderLen+12:], src[:])
	return f.buf
}

// knownFlows fills lb's connection table with n flows pinned to one of
// its reals, for all CPUs, in batches.
func knownFlows(b *testing.B, lb *Balancer, n int) *flowFrames {
	b.Helper()
	const batch = 1 << 16
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		b.Fatal(err)
	}
	slots, err := lb.readSlots()
	if err != nil {
		b.Fatal(err)
	}
	s := slotOf(b, lb, realAddr)
	pin := balancerFlowPin{Slot: uint32(s), Gen: slots[s].Gen}

	known := &flowFrames{base: tcpFlow, prefix: knownFlowPrefix}
	for start := 0; start < n; start += batch {
		count := min(batch, n-start)
		keys := make([]balancerFlowKey, count)
		pins := make([]balancerFlowPin, count*cpus)
		for i := range keys {
			f := known.key(start + i)
			keys[i] = balancerFlowKey{Src: addrWords(f.src), Dst: addrWords(f.dst), Sport: be16(f.sport), Dport: be16(f.dport), Proto: f.proto}
			for c := range cpus {
				pins[i*cpus+c] = pin
			}
		}
		if _, err := lb.objs.LruFlows.BatchUpdate(keys, pins, nil); err != nil {
			b.Fatalf("fill connection table: %v", err)
		}
	}
	known.next = n
	return known
}

// BenchmarkXDPAgainst compares this build's balancer with another build's,
// in one process, interleaved, on the same packets: the other build's
// benchmark harness object (its bench_bpfel_test.o) is named by
// DSRLAB_BENCH_AGAINST, e.g. one taken from git:
//
//	git show REV:bpf/bench_bpfel_test.o >/tmp/other.o
//	DSRLAB_BENCH_AGAINST=/tmp/other.o go test ./bpf/ -run '^$' -bench XDPAgainst -benchtime 20x
//
// Each of b.N rounds runs every path 100,000 times on each build, this
// build first in even rounds and second in odd ones, so that drift and
// other load on the machine fall on both alike. Reported per path: the
// median ns/packet of each build and their ratio (this/other). The other
// build's maps get this build's VIP, reals and configuration, copied
// entry by entry from the maps of the same name, so their layouts must
// agree (maps this build does not have are left empty). One flow, as the
// flows=1 rows of BenchmarkXDP.
func BenchmarkXDPAgainst(b *testing.B) {
	path := os.Getenv("DSRLAB_BENCH_AGAINST")
	if path == "" {
		b.Skip("DSRLAB_BENCH_AGAINST names no other build's bench_bpfel_test.o")
	}
	requireBPF(b)
	lb := newConfigured(b)
	setVIP(b, lb, tcpVIP, equal(realAddr, otherReal, realAt(0), realAt(1)))
	this, _ := loadHarness(b, lb)
	other := loadOtherHarness(b, path, lb)

	hit := tcpFlow.frame()
	miss := bytes.Clone(hit)
	miss[ethHeaderLen+ipv4HeaderLen+tcpFlagsOffset] = tcpFlagSYN
	paths := []struct {
		name string
		in   []byte
		want xdpAction
	}{
		{"lru-hit", hit, xdpTX},
		{"lru-miss", miss, xdpTX},
		{"pass", otherAddrFrame(), xdpPass},
	}
	// One packet of the flow on the benchmark's CPU pins it there, for
	// each build's connection table.
	for _, prog := range []*ebpf.Program{this, other} {
		if got, _ := runXDP(b, prog, hit); got != xdpTX {
			b.Fatalf("first packet: %s, want XDP_TX", got)
		}
	}

	const repeat = 100_000
	defer pinToTestCPU(b)()
	perPacket := func(prog *ebpf.Program, in []byte, want xdpAction) float64 {
		ret, d, err := prog.Benchmark(in, repeat, nil)
		if err != nil {
			b.Fatal(err)
		}
		if xdpAction(ret) != want {
			b.Fatalf("verdict %s, want %s", xdpAction(ret), want)
		}
		return float64(d.Nanoseconds())
	}
	ns := make([][2][]float64, len(paths))
	for round := range b.N {
		for i, p := range paths {
			progs := [2]*ebpf.Program{this, other}
			for turn := range progs {
				// Alternate which build runs first.
				k := turn ^ round&1
				ns[i][k] = append(ns[i][k], perPacket(progs[k], p.in, p.want))
			}
		}
	}
	for i, p := range paths {
		thisNs, otherNs := median(ns[i][0]), median(ns[i][1])
		b.ReportMetric(thisNs, p.name+"-ns/packet")
		b.ReportMetric(otherNs, p.name+"-other-ns/packet")
		b.ReportMetric(thisNs/otherNs, p.name+"-ratio")
	}
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

// loadOtherHarness loads xdp_balancer_bench from another build's object
// file, its maps filled from lb's maps of the same name.
func loadOtherHarness(b *testing.B, path string, lb *Balancer) *ebpf.Program {
	b.Helper()
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		b.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		b.Fatalf("load %s: %v", path, err)
	}
	b.Cleanup(func() { coll.Close() })
	ours := map[string]*ebpf.Map{}
	maps := lb.objs.balancerMaps
	for name, m := range map[string]*ebpf.Map{
		benchMapVips: maps.Vips, benchMapVipAddrs: maps.VipAddrs, benchMapVipAddrFilter: maps.VipAddrFilter,
		benchMapChRings: maps.ChRings, benchMapReals: maps.Reals, benchMapConfig: maps.Config,
	} {
		ours[name] = m
	}
	for name, m := range coll.Maps {
		from := ours[name]
		if from == nil {
			continue
		}
		if from.KeySize() != m.KeySize() || from.ValueSize() != m.ValueSize() {
			b.Fatalf("%s: map %s differs from this build's", path, name)
		}
		key, value := make([]byte, from.KeySize()), make([]byte, from.ValueSize())
		iter := from.Iterate()
		for iter.Next(&key, &value) {
			if err := m.Put(key, value); err != nil {
				b.Fatalf("%s: map %s: %v", path, name, err)
			}
		}
		if err := iter.Err(); err != nil {
			b.Fatal(err)
		}
	}
	prog := coll.Programs["xdp_balancer_bench"]
	if prog == nil {
		b.Fatalf("%s has no xdp_balancer_bench", path)
	}
	return prog
}
