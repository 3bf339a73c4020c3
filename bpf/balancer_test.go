//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf/maglev"
)

const (
	vipPort = 50007
	// labPathMTU is the reference lab's link MTU.
	labPathMTU = 1500
)

var (
	tcpVIP = VIP{Addr: vipAddr, Port: vipPort, Proto: ProtoTCP}
	udpVIP = VIP{Addr: vipAddr, Port: 53, Proto: ProtoUDP}

	tcpFlow = flow{src: clientAddr, dst: vipAddr, sport: 40612, dport: vipPort, proto: uint8(ProtoTCP)}
	udpFlow = flow{src: clientAddr, dst: vipAddr, sport: 40613, dport: 53, proto: uint8(ProtoUDP)}
)

// equal returns reals of weight 1.
func equal(addrs ...netip.Addr) []Real {
	reals := make([]Real, len(addrs))
	for i, a := range addrs {
		reals[i] = Real{Addr: a, Weight: 1}
	}
	return reals
}

// realAt returns the i-th address of the test reals' subnet.
func realAt(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 111, 222, byte(100 + i)})
}

func newBalancer(tb testing.TB) *Balancer {
	tb.Helper()
	return newBalancerWith(tb, Options{})
}

func newBalancerWith(tb testing.TB, opts Options) *Balancer {
	tb.Helper()
	requireBPF(tb)
	b, err := LoadBalancer(opts)
	if err != nil {
		skipIfUnsupported(tb, err)
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// newConfigured is a configured balancer without VIPs.
func newConfigured(tb testing.TB) *Balancer {
	tb.Helper()
	b := newBalancer(tb)
	if err := b.Configure(katranAddr, routerMAC, labPathMTU); err != nil {
		tb.Fatal(err)
	}
	return b
}

// newLabBalancer is the reference lab's katran: the TCP and UDP VIPs, both
// served by one real, on 1500-byte links.
func newLabBalancer(tb testing.TB) *Balancer {
	tb.Helper()
	b := newConfigured(tb)
	for _, v := range []VIP{tcpVIP, udpVIP} {
		setVIP(tb, b, v, equal(realAddr))
	}
	return b
}

func setVIP(tb testing.TB, b *Balancer, v VIP, reals []Real) {
	tb.Helper()
	if err := b.SetVIP(v, reals); err != nil {
		tb.Fatal(err)
	}
}

func TestBalancerFixtures(t *testing.T) {
	b := newLabBalancer(t)

	encap := func(in []byte) []byte { return ipipEncap(in, katranAddr, realAddr, routerMAC) }
	withTOS := func(p *ipv4Packet) { p.tos = 0x28 }
	moreFragments := func(p *ipv4Packet) { p.fragOff = ipFlagMF }
	laterFragment := func(p *ipv4Packet) { p.fragOff = 185 }
	withOptions := func(p *ipv4Packet) { p.options = []byte{1, 1, 1, 0} } // NOP NOP NOP EOL
	cutL4 := func(n int) func(*ipv4Packet) {
		return func(p *ipv4Packet) { p.payload = p.payload[:n] }
	}
	emptyUDP := func(p *ipv4Packet) { p.payload = udpDatagram(udpFlow.sport, udpFlow.dport, nil) }

	tcpFrame := tcpFlow.frame()
	otherPort, icmp := tcpFlow, tcpFlow
	otherPort.dport = vipPort + 1
	icmp.proto = protoICMP
	udpToTCPVIP, tcpToUDPVIP := udpFlow, tcpFlow
	udpToTCPVIP.dport = vipPort
	tcpToUDPVIP.dport = udpVIP.Port

	otherAddr := tcpFlow
	otherAddr.dst = netip.MustParseAddr("192.168.10.2")
	badIHL := bytes.Clone(tcpFrame)
	badIHL[ethHeaderLen] = 4<<4 | 4
	badIHL[ethHeaderLen+10], badIHL[ethHeaderLen+11] = 0, 0
	binary.BigEndian.PutUint16(badIHL[ethHeaderLen+10:], ipChecksum(badIHL[ethHeaderLen:ethHeaderLen+ipv4HeaderLen]))
	// 15 words of header in a 24-byte packet.
	ihlPastTotLen := udpFlow.frame(withOptions, func(p *ipv4Packet) { p.payload = nil })
	ihlPastTotLen[ethHeaderLen] = 4<<4 | 15
	ipv6Frame := ethFrame(katranMAC, routerMAC, etherTypeIPv6, tcpFrame[ethHeaderLen:])
	version6 := bytes.Clone(tcpFrame)
	version6[ethHeaderLen] = 6<<4 | ipv4HeaderLen/4
	// A short UDP datagram padded to the Ethernet minimum: tot_len, not the
	// frame length, is the inner length, and the padding rides along.
	padded := udpFlow.frame(emptyUDP)
	padded = append(padded, make([]byte, minFrameLen-len(padded))...)

	runFixtures(t, b.Program(), []fixture{
		{name: "tcp vip", in: tcpFrame, want: xdpTX, out: encap(tcpFrame)},
		{name: "udp vip", in: udpFlow.frame(), want: xdpTX, out: encap(udpFlow.frame())},
		{name: "tos copied to outer", in: tcpFlow.frame(withTOS), want: xdpTX, out: encap(tcpFlow.frame(withTOS))},
		{name: "inner DF is not a fragment", in: tcpFlow.frame(withDF), want: xdpTX, out: encap(tcpFlow.frame(withDF))},
		{name: "ethernet padding", in: padded, want: xdpTX, out: encap(padded)},
		{name: "other port", in: otherPort.frame(), want: xdpPass},
		{name: "other address", in: otherAddrFrame(), want: xdpPass},
		{name: "udp to tcp-only vip port", in: udpToTCPVIP.frame(), want: xdpPass},
		{name: "tcp to udp-only vip port", in: tcpToUDPVIP.frame(), want: xdpPass},
		{name: "icmp to vip address", in: icmp.frame(), want: xdpPass},
		{name: "arp", in: arpRequest(), want: xdpPass},
		{name: "ipv6 ethertype", in: ipv6Frame, want: xdpPass},
		{name: "ipv4 ethertype, version 6", in: version6, want: xdpPass},
		{name: "truncated ipv4 header", in: tcpFrame[:ethHeaderLen+ipv4HeaderLen-1], want: xdpPass},
		{name: "truncated tcp header", in: tcpFlow.frame(cutL4(tcpHeaderLen - 1)), want: xdpPass},
		{name: "truncated udp header", in: udpFlow.frame(cutL4(udpHeaderLen - 1)), want: xdpPass},
		{name: "frame shorter than tot_len", in: tcpFrame[:len(tcpFrame)-1], want: xdpPass},
		// Options are the real's kernel's business: the packet is
		// balanced whole, the L4 header found behind them.
		{name: "ip options", in: tcpFlow.frame(withOptions), want: xdpTX, out: encap(tcpFlow.frame(withOptions))},
		{name: "udp with ip options", in: udpFlow.frame(withOptions), want: xdpTX, out: encap(udpFlow.frame(withOptions))},
		{name: "ihl below 5", in: badIHL, want: xdpPass},
		{name: "ihl past tot_len", in: ihlPastTotLen, want: xdpPass},
		{name: "first fragment", in: tcpFlow.frame(moreFragments), want: xdpDrop},
		{name: "later fragment", in: tcpFlow.frame(laterFragment), want: xdpDrop},
		{name: "fragment to another port of the vip address", in: otherPort.frame(laterFragment), want: xdpDrop},
		{name: "fragment, not for a vip address", in: otherAddr.frame(laterFragment), want: xdpPass},
	}, func(t *testing.T, tt fixture, out []byte) {
		if tt.want == xdpTX {
			checkIPIP(t, out, tt.in, katranAddr, realAddr)
		}
	})
}

func TestBalancerUnconfiguredPasses(t *testing.T) {
	b := newBalancer(t)
	setVIP(t, b, tcpVIP, equal(realAddr))
	in := tcpFlow.frame()
	got, out := runXDP(t, b.Program(), in)
	if got != xdpPass || !bytes.Equal(out, in) {
		t.Fatalf("got %s with %x, want XDP_PASS with the frame unchanged", got, out)
	}
}

// flowHash restates the C flow hash (jhash_3words of the addresses and
// ports as the program loads them, seeded by the protocol), so the tests
// know which ring entry a flow reads.
func flowHash(f flow) uint32 {
	const flowHashSeed = 0x5f4d7c3b
	var ports [4]byte
	binary.BigEndian.PutUint16(ports[0:], f.sport)
	binary.BigEndian.PutUint16(ports[2:], f.dport)
	return jhash3(addrHashWord(f.src), addrHashWord(f.dst), binary.NativeEndian.Uint32(ports[:]), flowHashSeed^uint32(f.proto))
}

// addrHashWord restates addr_hash_word: an IPv4 address as the program
// loads it, an IPv6 one folded by two rounds of the mix. The unspecified
// address of either family stands for a zeroed field (hash modes).
func addrHashWord(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return binary.NativeEndian.Uint32(b[:])
	}
	w := addrWords(a)
	return jhash3(w[2], w[3], jhash3(w[0], w[1], 0, 0), 0)
}

// jhash3 restates jhash_3words.
func jhash3(a, b, c, initval uint32) uint32 {
	const jhashInitval = 0xdeadbeef
	init := uint32(jhashInitval) + initval
	a += init
	b += init
	c += init
	rol := func(w uint32, s int) uint32 { return w<<s | w>>(32-s) }
	c ^= b
	c -= rol(b, 14)
	a ^= c
	a -= rol(c, 11)
	b ^= a
	b -= rol(a, 25)
	c ^= b
	c -= rol(b, 16)
	a ^= c
	a -= rol(c, 4)
	b ^= a
	b -= rol(a, 14)
	c ^= b
	c -= rol(b, 24)
	return c
}

// ring is a VIP's Maglev table as the Go side computes it; owner is the
// real a flow that is not in the LRU must reach.
type ring struct {
	reals []Real
	table []int
}

func newRing(tb testing.TB, reals []Real) ring {
	tb.Helper()
	table, err := maglev.Table(maglevBackends(reals))
	if err != nil {
		tb.Fatal(err)
	}
	return ring{reals: reals, table: table}
}

func (r ring) owner(f flow) netip.Addr {
	return r.reals[r.table[flowHash(f)%maglev.RingSize]].Addr
}

// flowsOf returns n flows of base (varying the source port) for which
// pick(flow) is true.
func flowsOf(tb testing.TB, base flow, n int, pick func(flow) bool) []flow {
	tb.Helper()
	var out []flow
	for port := 1024; port <= math.MaxUint16 && len(out) < n; port++ {
		f := base
		f.sport = uint16(port)
		if pick(f) {
			out = append(out, f)
		}
	}
	if len(out) < n {
		tb.Fatalf("found %d of %d flows", len(out), n)
	}
	return out
}

// manyFlows returns n distinct flows of base.
func manyFlows(base flow, n int) []flow {
	out := make([]flow, n)
	for i := range out {
		out[i] = base
		out[i].sport = uint16(1024 + i)
	}
	return out
}

// encapsulatedTo runs one packet of f and returns the real it was sent to.
func encapsulatedTo(tb testing.TB, b *Balancer, f flow, tweaks ...func(*ipv4Packet)) netip.Addr {
	tb.Helper()
	return encapsulatedToOn(tb, testCPU, b, f, tweaks...)
}

// encapsulatedToOn is encapsulatedTo with the packet run on cpu.
func encapsulatedToOn(tb testing.TB, cpu int, b *Balancer, f flow, tweaks ...func(*ipv4Packet)) netip.Addr {
	tb.Helper()
	got, out := runXDPOn(tb, cpu, b.Program(), f.frame(tweaks...))
	if got != xdpTX {
		tb.Fatalf("flow %v: verdict %s, want XDP_TX", f, got)
	}
	return netip.AddrFrom4([4]byte(out[ethHeaderLen+16 : ethHeaderLen+20]))
}

// New flows reach the owner of their ring entry, computed here from the
// Go Maglev table and the restated C hash; later packets stay there.
func TestBalancerFollowsMaglevRing(t *testing.T) {
	b := newLabBalancer(t)
	reals := equal(realAt(0), realAt(1), realAt(2))
	setVIP(t, b, tcpVIP, reals)
	r := newRing(t, reals)

	hits := map[netip.Addr]int{}
	for _, f := range manyFlows(tcpFlow, 300) {
		first := encapsulatedTo(t, b, f)
		if want := r.owner(f); first != want {
			t.Fatalf("flow %v went to %s, the ring says %s", f, first, want)
		}
		for range 2 {
			if again := encapsulatedTo(t, b, f); again != first {
				t.Fatalf("flow %v went to %s, then to %s", f, first, again)
			}
		}
		hits[first]++
	}
	for _, real := range reals {
		if hits[real.Addr] < 300/6 {
			t.Errorf("real %s got %d of 300 flows: %v", real.Addr, hits[real.Addr], hits)
		}
	}
}

func TestBalancerWeights(t *testing.T) {
	b := newLabBalancer(t)
	light, heavy := realAt(0), realAt(1)
	setVIP(t, b, tcpVIP, []Real{{Addr: light, Weight: 1}, {Addr: heavy, Weight: 2}})

	// Enough flows that sampling noise (one standard deviation is about
	// 1.5% of the ratio) stays well inside the 10% asked for.
	const flows = 20000
	hits := map[netip.Addr]int{}
	for _, f := range manyFlows(tcpFlow, flows) {
		hits[encapsulatedTo(t, b, f)]++
	}
	ratio := float64(hits[heavy]) / float64(hits[light])
	t.Logf("%d flows: weight 1 got %d, weight 2 got %d (ratio %.3f)", flows, hits[light], hits[heavy], ratio)
	if ratio < 1.8 || ratio > 2.2 {
		t.Errorf("weight-2 real got %.3f times the flows of the weight-1 real, want 2 ± 10%%", ratio)
	}
}

func TestBalancerStats(t *testing.T) {
	b := newLabBalancer(t)
	other := realAt(0)
	udpOnly := VIP{Addr: netip.MustParseAddr("192.168.10.2"), Port: 53, Proto: ProtoUDP}
	setVIP(t, b, udpVIP, equal(realAddr, other))
	setVIP(t, b, udpOnly, equal(other))

	tcpIn, udpIn := tcpFlow.frame(), udpFlow.frame()
	const tcpPackets, udpPackets, otherPackets = 3, 2, 2
	for range tcpPackets {
		runXDP(t, b.Program(), tcpIn)
	}
	udpReal := newRing(t, equal(realAddr, other)).owner(udpFlow)
	for range udpPackets {
		runXDP(t, b.Program(), udpIn)
	}
	for range otherPackets {
		runXDP(t, b.Program(), arpRequest())
	}
	big := tcpFlow.frame(withDF, sized(labPathMTU))
	runXDP(t, b.Program(), big)
	// Fully drained: a new flow has nowhere to go.
	setVIP(t, b, udpOnly, []Real{{Addr: other, Weight: 0}})
	dropped := udpFlow
	dropped.dst = udpOnly.Addr
	if got, _ := runXDP(t, b.Program(), dropped.frame()); got != xdpDrop {
		t.Errorf("new flow to a drained vip: %s, want XDP_DROP", got)
	}

	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// The first packet of each flow misses, the rest hit (the too-big
	// one too: its real decides what is too big); the drained vip's
	// packet misses.
	want := Stats{
		Passed: otherPackets, Encapsulated: tcpPackets + udpPackets, Dropped: 1, TooBig: 1,
		LRUHits: tcpPackets + udpPackets - 1, LRUMisses: 3,
		VIPs: map[VIP]Counters{
			tcpVIP:  {Packets: tcpPackets, Bytes: tcpPackets * uint64(len(tcpIn))},
			udpVIP:  {Packets: udpPackets, Bytes: udpPackets * uint64(len(udpIn))},
			udpOnly: {},
		},
		Reals: map[netip.Addr]Counters{},
	}
	addReal := func(a netip.Addr, packets int, frame []byte) {
		c := want.Reals[a]
		c.Packets += uint64(packets)
		c.Bytes += uint64(packets * len(frame))
		want.Reals[a] = c
	}
	addReal(realAddr, tcpPackets, tcpIn)
	addReal(udpReal, udpPackets, udpIn)
	addReal(other, 0, nil)
	if got, want := fmt.Sprintf("%+v", s), fmt.Sprintf("%+v", want); got != want {
		t.Errorf("stats\n got %s\nwant %s", got, want)
	}
}

func TestBalancerRejects(t *testing.T) {
	b := newBalancer(t)
	ipv6 := netip.MustParseAddr("2001:db8::1")
	tooMany := make([]Real, MaxRealsPerVIP+1)
	for i := range tooMany {
		tooMany[i] = Real{Addr: netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), Weight: 1}
	}
	vipErrs := []struct {
		name  string
		vip   VIP
		reals []Real
	}{
		{"no reals", tcpVIP, nil},
		{"too many reals", tcpVIP, tooMany},
		{"duplicate real", tcpVIP, equal(realAddr, realAddr)},
		{"ipv6 vip, ipv4 real (6in4)", VIP{Addr: ipv6, Port: vipPort, Proto: ProtoTCP}, equal(realAddr)},
		{"ipv4-mapped vip", VIP{Addr: netip.AddrFrom16(vipAddr.As16()), Port: vipPort, Proto: ProtoTCP}, equal(realAddr)},
		{"icmp vip", VIP{Addr: vipAddr, Port: vipPort, Proto: protoICMP}, equal(realAddr)},
		{"ipv4-mapped real", tcpVIP, equal(netip.AddrFrom16(realAddr.As16()))},
		{"real with a zone", tcpVIP, equal(ipv6.WithZone("eth0"))},
		{"unspecified real", tcpVIP, equal(netip.IPv4Unspecified())},
		{"unspecified ipv6 real", tcpVIP, equal(netip.IPv6Unspecified())},
		{"ipv6 real below the ipv6 minimum mtu", tcpVIP, []Real{{Addr: ipv6, Weight: 1, MTU: MinPathMTU6 - 1}}},
	}
	for _, tt := range vipErrs {
		if err := b.SetVIP(tt.vip, tt.reals); err == nil {
			t.Errorf("SetVIP %s: no error", tt.name)
		}
	}
	configErrs := []struct {
		name    string
		src     netip.Addr
		mac     net.HardwareAddr
		pathMTU int
	}{
		{"ipv4-mapped source", netip.AddrFrom16(katranAddr.As16()), routerMAC, labPathMTU},
		{"ipv6 source, path mtu below the ipv6 minimum", ipv6, routerMAC, MinPathMTU6 - 1},
		{"0.0.0.0 source", netip.IPv4Unspecified(), routerMAC, labPathMTU},
		{":: source", netip.IPv6Unspecified(), routerMAC, labPathMTU},
		{"short mac", katranAddr, net.HardwareAddr{1, 2, 3}, labPathMTU},
		{"path mtu below minimum", katranAddr, routerMAC, MinPathMTU - 1},
		{"path mtu above ipv4", katranAddr, routerMAC, MaxPathMTU + 1},
	}
	for _, tt := range configErrs {
		if err := b.Configure(tt.src, tt.mac, tt.pathMTU); err == nil {
			t.Errorf("Configure with %s: no error", tt.name)
		}
	}
	if err := b.DeleteVIP(tcpVIP); err == nil {
		t.Error("DeleteVIP of an unknown vip: no error")
	}
	if vips, err := b.VIPs(); err != nil || len(vips) != 0 {
		t.Errorf("after rejected calls: vips %v, err %v; want none", vips, err)
	}
}

// TestBalancerManyVIPs fills every VIP, TCP and UDP, each with its own
// reals, checks that each VIP's traffic reaches only its own reals, then
// deletes one and gives its number to a new VIP.
func TestBalancerManyVIPs(t *testing.T) {
	b := newConfigured(t)
	vip := func(i int) VIP {
		proto := ProtoTCP
		if i%2 == 1 {
			proto = ProtoUDP
		}
		return VIP{Addr: netip.AddrFrom4([4]byte{10, 200, 0, byte(i)}), Port: vipPort, Proto: proto}
	}
	realsOf := func(i int) []Real {
		return equal(netip.AddrFrom4([4]byte{10, 201, byte(i), 1}), netip.AddrFrom4([4]byte{10, 201, byte(i), 2}))
	}
	flowOf := func(i int) flow {
		v := vip(i)
		return flow{src: clientAddr, dst: v.Addr, sport: 40000, dport: v.Port, proto: uint8(v.Proto)}
	}

	want := map[VIP][]Real{}
	for i := range MaxVIPs {
		setVIP(t, b, vip(i), realsOf(i))
		want[vip(i)] = realsOf(i)
	}
	if err := b.SetVIP(vip(MaxVIPs), realsOf(MaxVIPs)); err == nil {
		t.Errorf("vip %d of %d: no error", MaxVIPs+1, MaxVIPs)
	}
	got, err := b.VIPs()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("VIPs() = %v, want %v", got, want)
	}
	for i := range MaxVIPs {
		for _, f := range manyFlows(flowOf(i), 4) {
			if r := encapsulatedTo(t, b, f); !slices.Contains(realsOf(i), Real{Addr: r, Weight: 1}) {
				t.Fatalf("vip %s: flow sent to %s, not one of its reals", vip(i), r)
			}
		}
	}

	const victim = 7
	if err := b.DeleteVIP(vip(victim)); err != nil {
		t.Fatal(err)
	}
	if got, _ := runXDP(t, b.Program(), flowOf(victim).frame()); got != xdpPass {
		t.Errorf("deleted vip: %s, want XDP_PASS", got)
	}
	setVIP(t, b, vip(MaxVIPs), realsOf(MaxVIPs))
	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.VIPs[vip(victim)]; ok {
		t.Errorf("deleted vip %s still has counters", vip(victim))
	}
	// The new VIP took the deleted one's number; its counters start over.
	if c := s.VIPs[vip(MaxVIPs)]; c != (Counters{}) {
		t.Errorf("new vip starts with counters %+v, want zero", c)
	}
	if r := encapsulatedTo(t, b, flowOf(MaxVIPs)); !slices.Contains(realsOf(MaxVIPs), Real{Addr: r, Weight: 1}) {
		t.Errorf("new vip: flow sent to %s, not one of its reals", r)
	}
}

// The Go limits restate the C ones; the committed object must agree.
func TestLimitsMatchObject(t *testing.T) {
	spec, err := loadBalancer()
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]uint32{
		balancerMapVips:      MaxVIPs,
		balancerMapChRings:   MaxVIPs,
		balancerMapVipStats:  MaxVIPs,
		balancerMapReals:     realSlots,
		balancerMapRealStats: realSlots,
	}
	for name, want := range sizes {
		if got := spec.Maps[name].MaxEntries; got != want {
			t.Errorf("map %s holds %d entries, Go says %d", name, got, want)
		}
	}
	if typ := spec.Maps[balancerMapLruFlows].Type; typ != ebpf.LRUCPUHash {
		t.Errorf("connection table is a %s, want a per-CPU LRU hash", typ)
	}
}

// otherAddrFrame is a TCP packet the balancer parses fully but that is not
// for a VIP: the most expensive pass.
func otherAddrFrame() []byte {
	f := tcpFlow
	f.dst = netip.MustParseAddr("192.168.10.2")
	return f.frame()
}

// The address filter passes packets for no VIP address before any lookup;
// an address sharing a VIP address's bit takes the lookups, which find no
// VIP. The bits follow the VIPs: set by SetVIP, cleared once the last VIP
// of an address is deleted, kept while another address shares them.
func TestVIPAddrFilter(t *testing.T) {
	b := newLabBalancer(t)
	vip6 := VIP{Addr: netip.MustParseAddr("fd00:10::1"), Port: vipPort, Proto: ProtoTCP}
	setVIP(t, b, vip6, equal(real6))
	// Other addresses: one sharing the IPv4 VIP's bit, one not.
	var sharing, clear netip.Addr
	for a := netip.MustParseAddr("10.0.0.1"); !sharing.IsValid() || !clear.IsValid(); a = a.Next() {
		switch addrFilterBit(a) {
		case addrFilterBit(vipAddr):
			sharing = a
		case addrFilterBit(vip6.Addr):
		default:
			clear = a
		}
	}
	to := func(dst netip.Addr) []byte {
		f := tcpFlow
		f.dst = dst
		return f.frame()
	}
	runFixtures(t, b.Program(), []fixture{
		{name: "vip", in: to(vipAddr), want: xdpTX, out: ipipEncap(to(vipAddr), katranAddr, realAddr, routerMAC)},
		{name: "bit shared with a vip address", in: to(sharing), want: xdpPass},
		{name: "bit clear", in: to(clear), want: xdpPass},
	}, nil)

	bitSet := func(a netip.Addr) bool {
		t.Helper()
		var f balancerAddrFilter
		if err := b.objs.VipAddrFilter.Lookup(addrFilterKey, &f); err != nil {
			t.Fatal(err)
		}
		bit := addrFilterBit(a)
		return f.Words[bit/64]&(1<<(bit%64)) != 0
	}
	for _, v := range []VIP{tcpVIP, udpVIP, vip6} {
		if !bitSet(v.Addr) {
			t.Errorf("vip %s: bit %d clear", v, addrFilterBit(v.Addr))
		}
	}
	// One of two VIPs of the address goes: the bit stays.
	if err := b.DeleteVIP(tcpVIP); err != nil {
		t.Fatal(err)
	}
	if !bitSet(vipAddr) {
		t.Error("bit cleared while a vip has the address")
	}
	if err := b.DeleteVIP(udpVIP); err != nil {
		t.Fatal(err)
	}
	if bitSet(vipAddr) && addrFilterBit(vipAddr) != addrFilterBit(vip6.Addr) {
		t.Error("bit of an address no vip has is still set")
	}
	if !bitSet(vip6.Addr) {
		t.Error("another address's bit was cleared")
	}
}
