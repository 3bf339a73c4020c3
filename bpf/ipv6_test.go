//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// newDualStack is the dual-stack lab's katran: sources of both families,
// the IPv6 TCP and UDP VIPs and an IPv4 VIP (4in6), all served by one IPv6
// real, on 1500-byte links.
func newDualStack(tb testing.TB) *Balancer {
	tb.Helper()
	b := newConfigured(tb)
	if err := b.Configure(katran6, routerMAC, labPathMTU); err != nil {
		tb.Fatal(err)
	}
	for _, v := range []VIP{tcpVIP6, udpVIP6, tcpVIP4in6} {
		setVIP(tb, b, v, equal(real6))
	}
	return b
}

// checkIP6Encap checks what the fixture bytes cannot say on their own:
// the outer header's fields, one by one.
func checkIP6Encap(t *testing.T, out, in []byte, real netip.Addr) {
	t.Helper()
	if len(out) != len(in)+ipv6HeaderLen {
		t.Fatalf("frame length %d, want %d", len(out), len(in)+ipv6HeaderLen)
	}
	if et := binary.BigEndian.Uint16(out[12:]); et != etherTypeIPv6 {
		t.Errorf("ethertype %#04x, want IPv6", et)
	}
	outer := out[ethHeaderLen:]
	if got := binary.BigEndian.Uint32(outer[0:]) & 0xfffff; got != 0 {
		t.Errorf("flow label %#x, want 0", got)
	}
	if got := int(binary.BigEndian.Uint16(outer[4:])); got != ipLen(in) {
		t.Errorf("payload length %d, want the inner packet's %d", got, ipLen(in))
	}
	if got := netip.AddrFrom16([16]byte(outer[8:24])); got != katran6 {
		t.Errorf("outer src %s, want %s", got, katran6)
	}
	if got := outerDst6(out); got != real {
		t.Errorf("outer dst %s, want %s", got, real)
	}
	if !bytes.Equal(out[ethHeaderLen+ipv6HeaderLen:], in[ethHeaderLen:]) {
		t.Error("inner packet changed")
	}
}

func TestBalancerIPv6Fixtures(t *testing.T) {
	b := newDualStack(t)
	encap := func(in []byte) []byte { return ip6Encap(in, katran6, real6, routerMAC) }
	ext := func(exts ...ipv6Ext) func(*ipv6Packet) {
		return func(p *ipv6Packet) { p.exts = exts }
	}
	withTClass := func(p *ipv6Packet) { p.tclass = 0xb8 }
	hopByHop := ipv6Ext{extHopByHop, padOpts(0)}
	destOpts := ipv6Ext{extDestOpts, padOpts(1)}
	atomic := ipv6Ext{extFragment, fragBody(0, false)}

	otherPort, otherAddr, mapped := tcpFlow6, tcpFlow6, tcpFlow6
	otherPort.dport = vipPort + 1
	otherAddr.dst = netip.MustParseAddr("fd00:77::2")
	mapped.dst = netip.AddrFrom16(vipAddr.As16())

	tcpFrame := tcpFlow6.frame6()
	padded := udpFlow6.frame6(func(p *ipv6Packet) { p.payload = udpDatagram(udpFlow6.sport, udpFlow6.dport, nil) })
	padded = append(padded, make([]byte, 8)...)
	tooLong := tcpFlow6.frame6(ext(destOpts, destOpts, destOpts, destOpts, destOpts))
	fourExts := tcpFlow6.frame6(ext(hopByHop, destOpts, atomic, destOpts))
	// An extension header whose length runs past the payload length.
	pastPayload := tcpFlow6.frame6(ext(destOpts), func(p *ipv6Packet) { p.payloadLen = 10 })
	lies := tcpFlow6.frame6(func(p *ipv6Packet) { p.payloadLen = tcpHeaderLen + len(helloPayload) + 1 })
	shortTCP := tcpFlow6.frame6(func(p *ipv6Packet) { p.payloadLen = tcpHeaderLen - 1 })
	version4 := bytes.Clone(tcpFrame)
	version4[ethHeaderLen] = 4<<4 | version4[ethHeaderLen]&0xf
	var ns [4]byte
	neighbourSolicit := icmp6Frame(router6, katran6, icmp6Message(router6, katran6, icmp6NS, 0, ns, katran6.AsSlice()))
	v4in6 := tcpFlow4in6.frame(withDF)

	runFixtures(t, b.Program(), []fixture{
		{name: "tcp vip", in: tcpFrame, want: xdpTX, out: encap(tcpFrame)},
		{name: "udp vip", in: udpFlow6.frame6(), want: xdpTX, out: encap(udpFlow6.frame6())},
		{name: "traffic class copied", in: tcpFlow6.frame6(withTClass), want: xdpTX, out: encap(tcpFlow6.frame6(withTClass))},
		{name: "ethernet padding", in: padded, want: xdpTX, out: encap(padded)},
		{name: "4in6: ipv4 vip, ipv6 real", in: v4in6, want: xdpTX, out: encap(v4in6)},
		{name: "hop-by-hop and destination options", in: tcpFlow6.frame6(ext(hopByHop, destOpts)), want: xdpTX,
			out: encap(tcpFlow6.frame6(ext(hopByHop, destOpts)))},
		{name: "routing header, no segments left", in: tcpFlow6.frame6(ext(ipv6Ext{extRouting, routingBody(0)})), want: xdpTX,
			out: encap(tcpFlow6.frame6(ext(ipv6Ext{extRouting, routingBody(0)})))},
		{name: "atomic fragment", in: tcpFlow6.frame6(ext(atomic)), want: xdpTX, out: encap(tcpFlow6.frame6(ext(atomic)))},
		{name: "four extension headers", in: fourExts, want: xdpTX, out: encap(fourExts)},
		{name: "routing header, segments left", in: tcpFlow6.frame6(ext(ipv6Ext{extRouting, routingBody(1)})), want: xdpPass},
		{name: "first fragment", in: tcpFlow6.frame6(ext(ipv6Ext{extFragment, fragBody(0, true)})), want: xdpDrop},
		{name: "later fragment", in: tcpFlow6.frame6(ext(ipv6Ext{extFragment, fragBody(185, false)})), want: xdpDrop},
		{name: "fragment behind options", in: tcpFlow6.frame6(ext(destOpts, ipv6Ext{extFragment, fragBody(185, true)})), want: xdpDrop},
		{name: "fragment, not for a vip address", in: otherAddr.frame6(ext(ipv6Ext{extFragment, fragBody(185, false)})), want: xdpPass},
		{name: "other port", in: otherPort.frame6(), want: xdpPass},
		{name: "other address", in: otherAddr.frame6(), want: xdpPass},
		{name: "neighbour solicitation", in: neighbourSolicit, want: xdpPass},
		{name: "truncated tcp header", in: shortTCP, want: xdpPass},
		// Malformed: passed and counted.
		{name: "five extension headers", in: tooLong, want: xdpPass},
		{name: "extension header past the payload", in: pastPayload, want: xdpPass},
		{name: "payload length past the frame", in: lies, want: xdpPass},
		{name: "truncated ipv6 header", in: tcpFrame[:ethHeaderLen+ipv6HeaderLen-1], want: xdpPass},
		{name: "ipv6 ethertype, version 4", in: version4, want: xdpPass},
		{name: "ipv4-mapped destination", in: mapped.frame6(), want: xdpPass},
	}, func(t *testing.T, tt fixture, out []byte) {
		if tt.want == xdpTX {
			checkIP6Encap(t, out, tt.in, real6)
		}
	})

	s := stats(t, b)
	// TX: the 9 encapsulated; drops: 3 fragments; malformed: 6.
	if s.Encapsulated != 9 || s.DroppedFragments != 3 || s.Dropped != 3 || s.IPv6Malformed != 6 || s.Passed != 6+6 {
		t.Errorf("encapsulated %d, dropped %d (fragments %d), passed %d (malformed %d); want 9, 3 (3), 12 (6)",
			s.Encapsulated, s.Dropped, s.DroppedFragments, s.Passed, s.IPv6Malformed)
	}
	// hop-by-hop+destopts, routing, atomic fragment, four headers.
	if s.IPOptions != 4 {
		t.Errorf("ip options %d, want 4", s.IPOptions)
	}
	if c := s.Reals[real6]; c.Packets != 9 {
		t.Errorf("real %s counted %d packets, want 9", real6, c.Packets)
	}
}

// A family without a source address is not configured: its reals' packets
// go to the kernel, the other family's are balanced.
func TestBalancerIPv6NeedsItsSource(t *testing.T) {
	b := newConfigured(t)
	setVIP(t, b, tcpVIP6, equal(real6))
	setVIP(t, b, tcpVIP, equal(realAddr))
	if got, _ := runXDP(t, b.Program(), tcpFlow6.frame6()); got != xdpPass {
		t.Errorf("ipv6 vip without an ipv6 source: %s, want XDP_PASS", got)
	}
	if got := encapsulatedTo(t, b, tcpFlow); got != realAddr {
		t.Errorf("ipv4 vip: sent to %s, want %s", got, realAddr)
	}
	if err := b.Configure(katran6, routerMAC, labPathMTU); err != nil {
		t.Fatal(err)
	}
	// The IPv4 source set first stays.
	if got := encapsulatedTo(t, b, tcpFlow); got != realAddr {
		t.Errorf("ipv4 vip after configuring ipv6: sent to %s, want %s", got, realAddr)
	}
	if got, out := runXDP(t, b.Program(), tcpFlow6.frame6()); got != xdpTX || outerDst6(out) != real6 {
		t.Errorf("ipv6 vip once configured: %s to %s, want XDP_TX to %s", got, outerDst6(out), real6)
	}
	// Once one family has an IPv6 source, the shared path MTU must suit it.
	if err := b.Configure(katranAddr, routerMAC, MinPathMTU6-1); err == nil {
		t.Error("Configure lowering the path mtu below the ipv6 minimum: no error")
	}
}

func TestBalancerIPv6TooBig(t *testing.T) {
	b := newDualStack(t)
	const fits = labPathMTU - ipv6HeaderLen

	big := tcpFlow6.frame6(sized6(fits + 1))
	bigUDP := udpFlow6.frame6(sized6(labPathMTU))
	big4 := tcpFlow4in6.frame(withDF, sized(fits+1))
	exact := tcpFlow6.frame6(sized6(fits))
	// The frame is too big only by bytes after the packet: they are cut.
	trailer := append(bytes.Clone(exact), bytes.Repeat([]byte{0xee}, 100)...)
	runFixtures(t, b.Program(), []fixture{
		{name: "tcp one byte too big", in: big, want: xdpTX, out: icmp6TooBigReply(big, fits)},
		{name: "udp at the link mtu", in: bigUDP, want: xdpTX, out: icmp6TooBigReply(bigUDP, fits)},
		{name: "exactly fits", in: exact, want: xdpTX, out: ip6Encap(exact, katran6, real6, routerMAC)},
		{name: "fits, with a trailer", in: trailer, want: xdpTX, out: ip6Encap(exact, katran6, real6, routerMAC)},
		// 4in6: the 40-byte outer header counts, the answer is IPv4's.
		{name: "4in6 one byte too big", in: big4, want: xdpTX, out: icmpTooBig4(big4, fits)},
		{name: "4in6 too big without DF", in: tcpFlow4in6.frame(sized(fits + 1)), want: xdpDrop},
	}, func(t *testing.T, tt fixture, out []byte) {
		if binary.BigEndian.Uint16(out[12:]) == etherTypeIPv6 && out[ethHeaderLen+6] == protoICMPv6 {
			checkICMP6Checksum(t, out, 0)
			if len(out) != ethHeaderLen+1280 {
				t.Errorf("reply of %d bytes of IP, want 1280", len(out)-ethHeaderLen)
			}
		}
	})
	s := stats(t, b)
	if s.TooBig != 3 || s.DroppedTooBig != 1 || s.Encapsulated != 2 {
		t.Errorf("too big %d, dropped too big %d, encapsulated %d; want 3 1 2", s.TooBig, s.DroppedTooBig, s.Encapsulated)
	}
}

// icmpTooBig4 is icmpTooBig advertising mtu itself, for a path whose outer
// header is not IPv4's.
func icmpTooBig4(in []byte, mtu int) []byte {
	return icmpTooBig(in, mtu+ipv4HeaderLen)
}

// echo6Request is a ping from client6 to dst.
func echo6Request(dst netip.Addr, data []byte, tweaks ...func(*ipv6Packet)) []byte {
	return icmp6Frame(client6, dst, icmp6Message(client6, dst, icmp6EchoReq, 0, [4]byte{0x12, 0x34, 0, 7}, data), tweaks...)
}

// echo6Reply is the answer to in, whose ICMPv6 message follows extLen
// bytes of extension headers, computed from scratch: MACs and addresses
// swapped, hop limit 64, type 129, the checksum summed again.
func echo6Reply(in []byte, extLen int) []byte {
	out := bytes.Clone(in)
	copy(out[0:6], in[6:12])
	copy(out[6:12], in[0:6])
	ip := out[ethHeaderLen:]
	copy(ip[8:24], in[ethHeaderLen+24:ethHeaderLen+40])
	copy(ip[24:40], in[ethHeaderLen+8:ethHeaderLen+24])
	ip[7] = originTTL
	icmp := icmp6Of(out, extLen)
	icmp[0] = icmp6EchoRep
	binary.BigEndian.PutUint16(icmp[2:], 0)
	binary.BigEndian.PutUint16(icmp[2:], icmp6Checksum(netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40])), icmp))
	return out
}

// icmp6Of is the ICMPv6 message of frame, behind extLen bytes of
// extension headers.
func icmp6Of(frame []byte, extLen int) []byte {
	return frame[ethHeaderLen+ipv6HeaderLen+extLen : ethHeaderLen+ipLen(frame)]
}

// checkICMP6Checksum verifies the reply's checksum independently of the
// expected bytes.
func checkICMP6Checksum(t *testing.T, frame []byte, extLen int) {
	t.Helper()
	ip := frame[ethHeaderLen:]
	if icmp6Checksum(netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40])), icmp6Of(frame, extLen)) != 0 {
		t.Error("bad ICMPv6 checksum")
	}
}

func TestBalancerIPv6Echo(t *testing.T) {
	b := newDualStack(t)
	toVIP := echo6Request(vip6, []byte("ping data"))
	odd := echo6Request(vip6, []byte("odd"))
	const optsLen = 8
	withOpts := echo6Request(vip6, helloPayload, func(p *ipv6Packet) { p.exts = []ipv6Ext{{extDestOpts, padOpts(0)}} })
	extLen := map[string]int{"destination options": optsLen}
	runFixtures(t, b.Program(), []fixture{
		{name: "to vip", in: toVIP, want: xdpTX, out: echo6Reply(toVIP, 0)},
		{name: "odd data length", in: odd, want: xdpTX, out: echo6Reply(odd, 0)},
		{name: "destination options", in: withOpts, want: xdpTX, out: echo6Reply(withOpts, optsLen)},
		{name: "not for a vip address", in: echo6Request(katran6, helloPayload), want: xdpPass},
		{name: "echo reply to vip", in: icmp6Frame(client6, vip6, icmp6Message(client6, vip6, icmp6EchoRep, 0, [4]byte{}, nil)), want: xdpPass},
		{name: "truncated icmpv6 header", in: echo6Request(vip6, nil, func(p *ipv6Packet) { p.payload = p.payload[:icmpHeaderLen-1] }), want: xdpPass},
	}, func(t *testing.T, tt fixture, out []byte) {
		if tt.want == xdpTX {
			checkICMP6Checksum(t, out, extLen[tt.name])
		}
	})
	if s := stats(t, b); s.EchoReplies != 3 {
		t.Errorf("echo replies %d, want 3", s.EchoReplies)
	}
}
