//go:build linux

package bpf

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// replyQuote6 is what a router quotes of a real's DSR reply to f (the
// reply's tuple is f reversed): the IPv6 header and the first 8 bytes of
// L4 header, as small a quote as may come.
func replyQuote6(f flow) []byte {
	p := ipv6Packet{src: f.dst, dst: f.src, proto: f.proto}
	switch Proto(f.proto) {
	case ProtoTCP:
		p.payload = tcpSegment(f.dport, f.sport, make([]byte, 1400))
	default:
		p.payload = udpDatagram(f.dport, f.sport, make([]byte, 1400))
	}
	return p.marshal()[:ipv6HeaderLen+icmpQuotedPayload]
}

// packetTooBig6 is a router's Packet Too Big about quote, sent to dst.
func packetTooBig6(dst netip.Addr, mtu uint32, quote []byte) []byte {
	var rest [4]byte
	binary.BigEndian.PutUint32(rest[:], mtu)
	return icmp6Frame(router6, dst, icmp6Message(router6, dst, icmp6TooBig, 0, rest, quote))
}

// ICMPv6 errors about a real's DSR reply go to the flow's real: the one
// the LRU remembers, else the ring's owner.
func TestBalancerIPv6ForwardsICMPErrors(t *testing.T) {
	b := newDualStack(t)
	reals := equal(real6, otherReal6, netip.MustParseAddr("fd00:111:222::31"))
	setVIP(t, b, tcpVIP6, reals)

	pinned := tcpFlow6
	got, out := runXDP(t, b.Program(), pinned.frame6())
	if got != xdpTX {
		t.Fatalf("pinning packet: %s", got)
	}
	pinnedReal := outerDst6(out)
	var drained []Real
	for _, real := range reals {
		if real.Addr == pinnedReal {
			real.Weight = 0
		}
		drained = append(drained, real)
	}
	setVIP(t, b, tcpVIP6, drained)
	unseen := tcpFlow6
	unseen.sport++

	encapTo := func(in []byte, real netip.Addr) []byte { return ip6Encap(in, katran6, real, routerMAC) }
	pinnedErr := packetTooBig6(vip6, 1400, replyQuote6(pinned))
	unseenErr := packetTooBig6(vip6, 1400, replyQuote6(unseen))
	unreach := icmp6Frame(router6, vip6, icmp6Message(router6, vip6, icmp6Unreach, 4, [4]byte{}, replyQuote6(unseen)))
	notFromVIP := replyQuote6(unseen)
	copy(notFromVIP[8:24], otherReal6.AsSlice())
	wrongPort := unseen
	wrongPort.dport++

	runFixtures(t, b.Program(), []fixture{
		{name: "packet too big, flow in the lru", in: pinnedErr, want: xdpTX, out: encapTo(pinnedErr, pinnedReal)},
		{name: "packet too big, flow unseen", in: unseenErr, want: xdpTX, out: encapTo(unseenErr, newRing(t, drained).owner(unseen))},
		{name: "port unreachable", in: unreach, want: xdpTX, out: encapTo(unreach, newRing(t, drained).owner(unseen))},
		{name: "quote of a packet not from the vip", in: packetTooBig6(vip6, 1400, notFromVIP), want: xdpPass},
		{name: "quote of no vip flow", in: packetTooBig6(vip6, 1400, replyQuote6(wrongPort)), want: xdpPass},
		{name: "quote without ports", in: packetTooBig6(vip6, 1400, replyQuote6(unseen)[:ipv6HeaderLen+3]), want: xdpPass},
	}, nil)

	s := stats(t, b)
	if s.ICMPForwarded != 3 || s.Encapsulated != 4 {
		t.Errorf("icmp forwarded %d of %d encapsulated, want 3 of 4", s.ICMPForwarded, s.Encapsulated)
	}
}

// A router on the way to an IPv6 real with a smaller MTU reports Packet
// Too Big to the balancer's IPv6 address, quoting the outer header: the
// real's path MTU comes down, and the client's next big packet is told.
func TestBalancerIPv6LearnsPathMTU(t *testing.T) {
	b := newDualStack(t)
	const learned = 1400
	in := tcpFlow6.frame6(sized6(learned))
	sent := ip6Encap(tcpFlow6.frame6(), katran6, real6, routerMAC)
	quote := sent[ethHeaderLen : ethHeaderLen+ipv6HeaderLen+icmpQuotedPayload]

	if got, _ := runXDP(t, b.Program(), in); got != xdpTX {
		t.Fatalf("before the report: %s, want XDP_TX", got)
	}
	runFixtures(t, b.Program(), []fixture{
		{name: "not to our address", in: packetTooBig6(otherReal6, learned, quote), want: xdpPass},
		{name: "report", in: packetTooBig6(katran6, learned, quote), want: xdpPass},
		{name: "too big now", in: in, want: xdpTX, out: icmp6TooBigReply(in, learned-ipv6HeaderLen)},
		// A report below the IPv6 minimum is raised to it.
		{name: "report below 1280", in: packetTooBig6(katran6, 600, quote), want: xdpPass},
		{name: "too big at the minimum", in: tcpFlow6.frame6(sized6(1300)), want: xdpTX,
			out: icmp6TooBigReply(tcpFlow6.frame6(sized6(1300)), MinPathMTU6)},
	}, nil)
	if s := stats(t, b); s.PathMTULowered != 2 || s.TooBig != 2 {
		t.Errorf("path mtu lowered %d, too big %d; want 2 2", s.PathMTULowered, s.TooBig)
	}
}

// New IPv6 flows reach the owner of their ring entry (the Go Maglev table
// and the restated hash agree with the program on IPv6 addresses), spread
// over the reals, and stay on their real when it is drained.
func TestBalancerIPv6MaglevAndLRU(t *testing.T) {
	b := newDualStack(t)
	reals := equal(real6, otherReal6, netip.MustParseAddr("fd00:111:222::31"))
	setVIP(t, b, tcpVIP6, reals)
	r := newRing(t, reals)

	const flows = 3000
	hits := map[netip.Addr]int{}
	first := map[flow]netip.Addr{}
	for i, f := range manyFlows(tcpFlow6, flows) {
		// Vary the source address too: clients differ in the low bits.
		a := f.src.As16()
		binary.BigEndian.PutUint16(a[14:], uint16(i))
		f.src = netip.AddrFrom16(a)
		got, out := runXDP(t, b.Program(), f.frame6())
		if got != xdpTX {
			t.Fatalf("flow %v: %s", f, got)
		}
		real := outerDst6(out)
		if want := r.owner(f); real != want {
			t.Fatalf("flow %v went to %s, the ring says %s", f, real, want)
		}
		hits[real]++
		first[f] = real
	}
	// Maglev's spread is within a few percent; sampling noise on 1000
	// flows a real is about 3%.
	for _, real := range reals {
		if share := float64(hits[real.Addr]) / flows; share < 0.28 || share > 0.39 {
			t.Errorf("real %s got %.3f of the flows: %v", real.Addr, share, hits)
		}
	}

	// Drain one real: its established flows stay, new ones avoid it.
	setVIP(t, b, tcpVIP6, []Real{{Addr: real6, Weight: 0}, reals[1], reals[2]})
	before := stats(t, b)
	for f, want := range first {
		if _, out := runXDP(t, b.Program(), f.frame6()); outerDst6(out) != want {
			t.Fatalf("flow %v moved from %s to %s", f, want, outerDst6(out))
		}
	}
	if hits := stats(t, b).LRUHits - before.LRUHits; hits != flows {
		t.Errorf("%d LRU hits, want %d", hits, flows)
	}
	fresh := tcpFlow6
	fresh.src = netip.MustParseAddr("fd00:111:220::99")
	for _, f := range manyFlows(fresh, 100) {
		if _, out := runXDP(t, b.Program(), f.frame6()); outerDst6(out) == real6 {
			t.Fatalf("new flow %v sent to the drained %s", f, real6)
		}
	}
}

func TestDecapIPv6Fixtures(t *testing.T) {
	d := newDecap(t, realAddr, real6)
	// The real's kernel sees the inner packet behind the frame's own
	// Ethernet addresses, with the inner packet's EtherType.
	decapsulated6 := func(in []byte, innerType uint16) []byte {
		return ethFrame(in[0:6], in[6:12], innerType, in[ethHeaderLen+ipv6HeaderLen:])
	}
	ip6ip6 := ip6Encap(tcpFlow6.frame6(), katran6, real6, realSideMAC)
	fourIn6 := ip6Encap(tcpFlow4in6.frame(), katran6, real6, realSideMAC)
	toOther := ip6Encap(tcpFlow6.frame6(), katran6, otherReal6, realSideMAC)
	shortInner := ethFrame(realSideMAC, routerMAC, etherTypeIPv6, ipv6Packet{src: katran6, dst: real6, proto: protoIPv6,
		payload: make([]byte, ipv4HeaderLen-1)}.marshal())
	withOpts := ethFrame(realSideMAC, routerMAC, etherTypeIPv6, ipv6Packet{src: katran6, dst: real6, proto: protoIPv6,
		exts: []ipv6Ext{{extDestOpts, padOpts(0)}}, payload: tcpFlow6.frame6()[ethHeaderLen:]}.marshal())
	plain := flow{src: client6, dst: real6, sport: 40000, dport: vipPort, proto: uint8(ProtoTCP)}.frame6()

	runFixtures(t, d.Program(), []fixture{
		{name: "ip6ip6 to listed dst", in: ip6ip6, want: xdpPass, out: decapsulated6(ip6ip6, etherTypeIPv6)},
		{name: "4in6 to listed dst", in: fourIn6, want: xdpPass, out: decapsulated6(fourIn6, etherTypeIPv4)},
		{name: "ip6ip6 to unlisted dst", in: toOther, want: xdpPass},
		{name: "truncated inner header", in: shortInner, want: xdpPass},
		{name: "outer extension header", in: withOpts, want: xdpPass},
		{name: "plain tcp to listed dst", in: plain, want: xdpPass},
	}, nil)
	if s, err := d.Stats(); err != nil || s.Decapsulated != 2 {
		t.Errorf("decapsulated %d (%v), want 2", s.Decapsulated, err)
	}
}

// The balancer's IPv6 output, decapsulated on the real, is the client's
// packet again; only the Ethernet addresses differ.
func TestEncapDecapRoundTripIPv6(t *testing.T) {
	b := newDualStack(t)
	d := newDecap(t, real6)
	for _, in := range [][]byte{tcpFlow6.frame6(), udpFlow6.frame6(), tcpFlow4in6.frame()} {
		roundTrip(t, b, d, in)
	}
}
