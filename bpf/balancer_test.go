//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
)

const vipPort = 50007

var (
	tcpVIP = VIP{Addr: vipAddr, Port: vipPort, Proto: ProtoTCP}
	udpVIP = VIP{Addr: vipAddr, Port: 53, Proto: ProtoUDP}

	tcpFlow = flow{src: clientAddr, dst: vipAddr, sport: 40612, dport: vipPort, proto: uint8(ProtoTCP)}
	udpFlow = flow{src: clientAddr, dst: vipAddr, sport: 40613, dport: 53, proto: uint8(ProtoUDP)}
)

func newBalancer(tb testing.TB) *Balancer {
	tb.Helper()
	requireBPF(tb)
	b, err := LoadBalancer()
	if err != nil {
		skipIfUnsupported(tb, err)
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// newLabBalancer is the reference lab's katran: the TCP and UDP VIPs, both
// served by one real.
func newLabBalancer(tb testing.TB) *Balancer {
	tb.Helper()
	b := newBalancer(tb)
	if err := b.Configure(katranAddr, routerMAC); err != nil {
		tb.Fatal(err)
	}
	for _, v := range []VIP{tcpVIP, udpVIP} {
		if err := b.SetVIP(v, []netip.Addr{realAddr}); err != nil {
			tb.Fatal(err)
		}
	}
	return b
}

func TestBalancerFixtures(t *testing.T) {
	b := newLabBalancer(t)

	encap := func(in []byte) []byte { return ipipEncap(in, katranAddr, realAddr, routerMAC) }
	withTOS := func(p *ipv4Packet) { p.tos = 0x28 }
	withDF := func(p *ipv4Packet) { p.fragOff = ipFlagDF }
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

	ipv6Frame := ethFrame(katranMAC, routerMAC, etherTypeIPv6, tcpFrame[ethHeaderLen:])
	version6 := bytes.Clone(tcpFrame)
	version6[ethHeaderLen] = 6<<4 | ipv4HeaderLen/4
	// A short UDP datagram padded to the Ethernet minimum: tot_len, not the
	// frame length, is the inner length, and the padding rides along.
	padded := udpFlow.frame(emptyUDP)
	padded = append(padded, make([]byte, minFrameLen-len(padded))...)

	tests := []struct {
		name string
		in   []byte
		want xdpAction
		out  []byte // nil: the frame must come out unchanged
	}{
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
		{name: "ip options", in: tcpFlow.frame(withOptions), want: xdpPass},
		{name: "first fragment", in: tcpFlow.frame(moreFragments), want: xdpPass},
		{name: "later fragment", in: tcpFlow.frame(laterFragment), want: xdpPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, out := runXDP(t, b.Program(), tt.in)
			if got != tt.want {
				t.Fatalf("verdict %s, want %s", got, tt.want)
			}
			want := tt.out
			if want == nil {
				want = tt.in
			}
			if tt.want == xdpTX {
				checkIPIP(t, out, tt.in, katranAddr, realAddr)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs\n got %x\nwant %x", out, want)
			}
		})
	}
}

func TestBalancerUnconfiguredPasses(t *testing.T) {
	b := newBalancer(t)
	if err := b.SetVIP(tcpVIP, []netip.Addr{realAddr}); err != nil {
		t.Fatal(err)
	}
	in := tcpFlow.frame()
	got, out := runXDP(t, b.Program(), in)
	if got != xdpPass || !bytes.Equal(out, in) {
		t.Fatalf("got %s with %x, want XDP_PASS with the frame unchanged", got, out)
	}
}

// flowHash restates the C flow hash (jhash_3words of the addresses and
// ports as the program loads them, seeded by the protocol), so the tests
// know which real a flow must reach.
func flowHash(f flow) uint32 {
	const (
		jhashInitval = 0xdeadbeef
		flowHashSeed = 0x5f4d7c3b
	)
	src, dst := f.src.As4(), f.dst.As4()
	var ports [4]byte
	binary.BigEndian.PutUint16(ports[0:], f.sport)
	binary.BigEndian.PutUint16(ports[2:], f.dport)
	init := uint32(jhashInitval) + (flowHashSeed ^ uint32(f.proto))
	a := binary.NativeEndian.Uint32(src[:]) + init
	b := binary.NativeEndian.Uint32(dst[:]) + init
	c := binary.NativeEndian.Uint32(ports[:]) + init
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

// encapsulatedTo runs one packet of f and returns the real it was sent to.
func encapsulatedTo(t *testing.T, b *Balancer, f flow) netip.Addr {
	t.Helper()
	got, out := runXDP(t, b.Program(), f.frame())
	if got != xdpTX {
		t.Fatalf("flow %v: verdict %s, want XDP_TX", f, got)
	}
	return netip.AddrFrom4([4]byte(out[ethHeaderLen+16 : ethHeaderLen+20]))
}

func TestBalancerSpreadsFlowsConsistently(t *testing.T) {
	b := newLabBalancer(t)
	reals := []netip.Addr{realAddr, otherReal}
	if err := b.SetVIP(tcpVIP, reals); err != nil {
		t.Fatal(err)
	}

	const flows = 256
	hits := map[netip.Addr]int{}
	for i := range flows {
		f := tcpFlow
		f.sport = uint16(32768 + i)
		first := encapsulatedTo(t, b, f)
		for range 3 {
			if again := encapsulatedTo(t, b, f); again != first {
				t.Fatalf("flow %v went to %s, then to %s", f, first, again)
			}
		}
		if want := reals[flowHash(f)%uint32(len(reals))]; first != want {
			t.Fatalf("flow %v went to %s, the hash says %s", f, first, want)
		}
		hits[first]++
	}
	for _, r := range reals {
		if hits[r] < flows/4 {
			t.Errorf("real %s got %d of %d flows: %v", r, hits[r], flows, hits)
		}
	}
}

func TestBalancerReplaceReals(t *testing.T) {
	b := newLabBalancer(t)
	if got := encapsulatedTo(t, b, tcpFlow); got != realAddr {
		t.Fatalf("sent to %s, want %s", got, realAddr)
	}
	if err := b.SetVIP(tcpVIP, []netip.Addr{otherReal}); err != nil {
		t.Fatal(err)
	}
	if got := encapsulatedTo(t, b, tcpFlow); got != otherReal {
		t.Fatalf("after replace sent to %s, want %s", got, otherReal)
	}
	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Replacing keeps the VIP's slot, so its counters carry on.
	if got := s.VIPs[tcpVIP].Packets; got != 2 {
		t.Errorf("vip packets %d after replace, want 2", got)
	}
}

func TestBalancerStats(t *testing.T) {
	b := newLabBalancer(t)
	const vipPackets, otherPackets = 3, 2
	in := tcpFlow.frame()
	for range vipPackets {
		runXDP(t, b.Program(), in)
	}
	for range otherPackets {
		runXDP(t, b.Program(), arpRequest())
	}

	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Encapsulated != vipPackets || s.Passed != otherPackets || s.Dropped != 0 {
		t.Errorf("encapsulated %d passed %d dropped %d, want %d %d 0",
			s.Encapsulated, s.Passed, s.Dropped, vipPackets, otherPackets)
	}
	want := map[VIP]Counters{
		tcpVIP: {Packets: vipPackets, Bytes: vipPackets * uint64(len(in))},
		udpVIP: {},
	}
	if fmt.Sprint(s.VIPs) != fmt.Sprint(want) {
		t.Errorf("vip counters %v, want %v", s.VIPs, want)
	}
}

func TestBalancerRejects(t *testing.T) {
	b := newBalancer(t)
	ipv6 := netip.MustParseAddr("2001:db8::1")
	tooMany := make([]netip.Addr, MaxRealsPerVIP+1)
	for i := range tooMany {
		tooMany[i] = realAddr
	}
	vipErrs := []struct {
		name  string
		vip   VIP
		reals []netip.Addr
	}{
		{"no reals", tcpVIP, nil},
		{"too many reals", tcpVIP, tooMany},
		{"ipv6 vip", VIP{Addr: ipv6, Port: vipPort, Proto: ProtoTCP}, []netip.Addr{realAddr}},
		{"icmp vip", VIP{Addr: vipAddr, Port: vipPort, Proto: protoICMP}, []netip.Addr{realAddr}},
		{"ipv6 real", tcpVIP, []netip.Addr{ipv6}},
		{"unspecified real", tcpVIP, []netip.Addr{netip.IPv4Unspecified()}},
	}
	for _, tt := range vipErrs {
		if err := b.SetVIP(tt.vip, tt.reals); err == nil {
			t.Errorf("SetVIP %s: no error", tt.name)
		}
	}
	if err := b.Configure(ipv6, routerMAC); err == nil {
		t.Error("Configure with an IPv6 source: no error")
	}
	if err := b.Configure(netip.IPv4Unspecified(), routerMAC); err == nil {
		t.Error("Configure with 0.0.0.0: no error")
	}
	if err := b.Configure(katranAddr, net.HardwareAddr{1, 2, 3}); err == nil {
		t.Error("Configure with a short MAC: no error")
	}
	if s, err := b.Stats(); err != nil || len(s.VIPs) != 0 {
		t.Errorf("after rejected calls: vips %v, err %v; want none", s.VIPs, err)
	}
}

func TestBalancerVIPLimit(t *testing.T) {
	b := newBalancer(t)
	vip := func(i int) VIP {
		return VIP{Addr: netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}), Port: vipPort, Proto: ProtoTCP}
	}
	reals := []netip.Addr{realAddr}
	for i := range MaxVIPs {
		if err := b.SetVIP(vip(i), reals); err != nil {
			t.Fatalf("vip %d of %d: %v", i+1, MaxVIPs, err)
		}
	}
	if err := b.SetVIP(vip(MaxVIPs), reals); err == nil {
		t.Errorf("vip %d of %d: no error", MaxVIPs+1, MaxVIPs)
	}
	if err := b.SetVIP(vip(0), []netip.Addr{otherReal}); err != nil {
		t.Errorf("replacing reals with every vip in use: %v", err)
	}
}

// The Go limits restate the C ones; the committed object must agree.
func TestLimitsMatchObject(t *testing.T) {
	spec, err := loadBalancer()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{balancerMapVips, balancerMapVipReals, balancerMapVipStats} {
		if got := spec.Maps[name].MaxEntries; got != MaxVIPs {
			t.Errorf("map %s holds %d entries, MaxVIPs is %d", name, got, MaxVIPs)
		}
	}
}

// BenchmarkBalancer reports the kernel's own per-run time (kernel-ns/op)
// beside the wall time, which is mostly the BPF_PROG_TEST_RUN syscall.
func BenchmarkBalancer(b *testing.B) {
	lb := newLabBalancer(b)

	// Encapsulation rewrites the packet, and with repeat > 1 the kernel
	// runs later iterations on the already-encapsulated packet (DESIGN.md
	// pitfall 7), so each run is a separate single-repeat test run.
	b.Run("encap", func(b *testing.B) {
		in := tcpFlow.frame()
		var kernel int64
		for b.Loop() {
			ret, d, err := lb.Program().Benchmark(in, 1, nil)
			if err != nil {
				b.Fatal(err)
			}
			if xdpAction(ret) != xdpTX {
				b.Fatalf("verdict %s, want XDP_TX", xdpAction(ret))
			}
			kernel += d.Nanoseconds()
		}
		b.ReportMetric(float64(kernel)/float64(b.N), "kernel-ns/op")
	})

	// Passing leaves the packet as it was, so one test run can repeat it.
	b.Run("pass", func(b *testing.B) {
		in := otherAddrFrame()
		ret, d, err := lb.Program().Benchmark(in, b.N, nil)
		if err != nil {
			b.Fatal(err)
		}
		if xdpAction(ret) != xdpPass {
			b.Fatalf("verdict %s, want XDP_PASS", xdpAction(ret))
		}
		b.ReportMetric(float64(d.Nanoseconds()), "kernel-ns/op")
	})
}

// otherAddrFrame is a TCP packet the balancer parses fully but that is not
// for a VIP: the most expensive pass.
func otherAddrFrame() []byte {
	f := tcpFlow
	f.dst = netip.MustParseAddr("192.168.10.2")
	return f.frame()
}
