//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// routerAddr is a router on the reals' side, the sender of ICMP errors.
var routerAddr = netip.MustParseAddr("10.111.222.1")

// echoRequest is a ping from the client to dst.
func echoRequest(dst netip.Addr, data []byte, tweaks ...func(*ipv4Packet)) []byte {
	return icmpFrame(clientAddr, dst, icmpMessage(icmpEchoRequest, 0, [4]byte{0x12, 0x34, 0, 7}, data), tweaks...)
}

// echoReply is the answer to in, computed from scratch: MACs and addresses
// swapped, TTL 64, type 0, both checksums summed again.
func echoReply(in []byte) []byte {
	out := bytes.Clone(in)
	copy(out[0:6], in[6:12])
	copy(out[6:12], in[0:6])
	ip := out[ethHeaderLen:]
	hl := int(ip[0]&0xf) * 4
	copy(ip[12:16], in[ethHeaderLen+16:ethHeaderLen+20])
	copy(ip[16:20], in[ethHeaderLen+12:ethHeaderLen+16])
	ip[8] = originTTL
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:hl]))
	icmp := ip[hl:binary.BigEndian.Uint16(ip[2:])]
	icmp[0] = icmpEchoReply
	binary.BigEndian.PutUint16(icmp[2:], 0)
	binary.BigEndian.PutUint16(icmp[2:], ipChecksum(icmp))
	return out
}

// replyQuote is what a router quotes of a real's DSR reply to f: the reply
// goes from the VIP to the client, so its tuple is f reversed. Only the
// 8 bytes of L4 header RFC 792 guarantees.
func replyQuote(f flow) []byte {
	p := ipv4Packet{src: f.dst, dst: f.src, proto: f.proto, fragOff: ipFlagDF}
	switch Proto(f.proto) {
	case ProtoTCP:
		p.payload = tcpSegment(f.dport, f.sport, make([]byte, 1400))
	default:
		p.payload = udpDatagram(f.dport, f.sport, make([]byte, 1400))
	}
	return p.marshal()[:ipv4HeaderLen+icmpQuotedPayload]
}

const icmpQuotedPayload = 8

// fragNeeded is a router's frag-needed about quote, sent to dst.
func fragNeeded(dst netip.Addr, mtu uint16, quote []byte) []byte {
	var rest [4]byte
	binary.BigEndian.PutUint16(rest[2:], mtu)
	return icmpFrame(routerAddr, dst, icmpMessage(icmpDestUnreach, icmpFragNeeded, rest, quote))
}

func TestBalancerEcho(t *testing.T) {
	b := newLabBalancer(t)
	anyPort := VIP{Addr: netip.MustParseAddr("192.168.10.3"), Port: AnyPort, Proto: ProtoUDP}
	setVIP(t, b, anyPort, equal(realAddr))

	toVIP := echoRequest(vipAddr, []byte("ping data"))
	odd := echoRequest(vipAddr, []byte("odd"))
	// NOP NOP NOP EOL: options stay, the checksum update needs no loop.
	options := echoRequest(vipAddr, helloPayload, func(p *ipv4Packet) { p.options = []byte{1, 1, 1, 0} })
	padded := echoRequest(vipAddr, nil)
	padded = append(padded, make([]byte, minFrameLen-len(padded))...)
	toAnyPort := echoRequest(anyPort.Addr, helloPayload)
	runFixtures(t, b.Program(), []fixture{
		{name: "to vip", in: toVIP, want: xdpTX, out: echoReply(toVIP)},
		{name: "odd data length", in: odd, want: xdpTX, out: echoReply(odd)},
		{name: "ip options", in: options, want: xdpTX, out: echoReply(options)},
		{name: "ethernet padding", in: padded, want: xdpTX, out: echoReply(padded)},
		{name: "to an any-port vip", in: toAnyPort, want: xdpTX, out: echoReply(toAnyPort)},
		{name: "not for a vip address", in: echoRequest(katranAddr, helloPayload), want: xdpPass},
		{name: "echo reply to vip", in: icmpFrame(clientAddr, vipAddr, icmpMessage(icmpEchoReply, 0, [4]byte{}, nil)), want: xdpPass},
		{name: "truncated icmp header", in: echoRequest(vipAddr, nil)[:ethHeaderLen+ipv4HeaderLen+icmpHeaderLen-1], want: xdpPass},
	}, func(t *testing.T, tt fixture, out []byte) {
		if tt.want == xdpTX {
			checkICMPChecksums(t, out)
		}
	})

	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.EchoReplies != 5 || s.Passed != 3 {
		t.Errorf("echo replies %d passed %d, want 5 3", s.EchoReplies, s.Passed)
	}

	// The address answers while a VIP has it, and only then.
	if err := b.DeleteVIP(tcpVIP); err != nil {
		t.Fatal(err)
	}
	if got, _ := runXDP(t, b.Program(), toVIP); got != xdpTX {
		t.Errorf("ping after deleting one of two vips of the address: %s, want XDP_TX", got)
	}
	if err := b.DeleteVIP(udpVIP); err != nil {
		t.Fatal(err)
	}
	if got, _ := runXDP(t, b.Program(), toVIP); got != xdpPass {
		t.Errorf("ping after deleting every vip of the address: %s, want XDP_PASS", got)
	}
}

// An echo reply's checksum is updated from the request's, not summed
// again; both RFC 1071 zeros must come out right. A message of zeros only
// sums to 0, and its checksum is 0xffff, which the update (RFC 1624 eqn.
// 3) never yields on its own: a receiver would count 0x0000 as a checksum
// error. A message that sums to 0xffff has checksum 0x0000; its request
// has the same checksum, 0xf7ff, as a request of zeros.
func TestBalancerEchoChecksumOfZeros(t *testing.T) {
	b := newLabBalancer(t)
	// From the client (TTL 63) to the VIP, identifier 0, sequence 0,
	// no data.
	zeros := hexFrame(`02d500000011 02d500000012 0800
		4500 001c 0000 0000 3f01 cabd 0a6fdc0b c0a80a01
		0800 f7ff 0000 0000`)
	zerosReply := hexFrame(`02d500000012 02d500000011 0800
		4500 001c 0000 0000 4001 c9bd c0a80a01 0a6fdc0b
		0000 ffff 0000 0000`)
	zeroRequest := func(id uint16, data []byte) []byte {
		var rest [4]byte
		binary.BigEndian.PutUint16(rest[:], id)
		return icmpFrame(clientAddr, vipAddr, icmpMessage(icmpEchoRequest, 0, rest, data))
	}
	zeroData := zeroRequest(0, make([]byte, 9))
	sumsToOnes := zeroRequest(0xffff, nil)
	onesAtTheEnd := zeroRequest(0, append(make([]byte, 14), 0xff, 0xff))
	for _, in := range [][]byte{zeroData, sumsToOnes, onesAtTheEnd} {
		if got := binary.BigEndian.Uint16(in[ethHeaderLen+ipv4HeaderLen+2:]); got != 0xf7ff {
			t.Fatalf("request checksum %#04x, want 0xf7ff", got)
		}
	}
	runFixtures(t, b.Program(), []fixture{
		{name: "all zero", in: zeros, want: xdpTX, out: zerosReply},
		{name: "zero data, odd length", in: zeroData, want: xdpTX, out: echoReply(zeroData)},
		{name: "sums to 0xffff", in: sumsToOnes, want: xdpTX, out: echoReply(sumsToOnes)},
		{name: "last bytes not zero", in: onesAtTheEnd, want: xdpTX, out: echoReply(onesAtTheEnd)},
	}, func(t *testing.T, _ fixture, out []byte) { checkICMPChecksums(t, out) })
	if got := binary.BigEndian.Uint16(echoReply(sumsToOnes)[ethHeaderLen+ipv4HeaderLen+2:]); got != 0 {
		t.Errorf("reply to the 0xffff request: checksum %#04x, want 0", got)
	}
}

// An ICMP error about a real's DSR reply reaches the VIP: it must go to
// the real of the flow it is about, the one the LRU remembers, else the
// ring's owner.
func TestBalancerForwardsICMPErrors(t *testing.T) {
	b := newLabBalancer(t)
	reals := equal(realAt(0), realAt(1), realAt(2))
	setVIP(t, b, tcpVIP, reals)
	setVIP(t, b, udpVIP, reals)
	r := newRing(t, reals)

	// A flow the LRU knows, on a real that is not its ring owner any more
	// (the real was drained and the flow stays).
	pinned := tcpFlow
	pinnedReal := encapsulatedTo(t, b, pinned)
	var drained []Real
	for _, real := range reals {
		if real.Addr == pinnedReal {
			real.Weight = 0
		}
		drained = append(drained, real)
	}
	setVIP(t, b, tcpVIP, drained)
	rDrained := newRing(t, drained)
	// A flow nobody has seen: the ring decides.
	unseen := udpFlow

	encapTo := func(in []byte, real netip.Addr) []byte { return ipipEncap(in, katranAddr, real, routerMAC) }
	pinnedErr := fragNeeded(vipAddr, 1400, replyQuote(pinned))
	unseenErr := fragNeeded(vipAddr, 1400, replyQuote(unseen))
	var portUnreach [4]byte
	portUnreachErr := icmpFrame(routerAddr, vipAddr, icmpMessage(icmpDestUnreach, icmpPortUnreach, portUnreach, replyQuote(unseen)))
	fullTCP := tcpFlow
	fullTCP.sport++
	fullQuote := fragNeeded(vipAddr, 1400, ipv4Packet{src: vipAddr, dst: clientAddr, proto: uint8(ProtoTCP),
		payload: tcpSegment(vipPort, fullTCP.sport, helloPayload)}.marshal())

	otherClient := tcpFlow
	otherClient.src = otherReal
	notOurs := replyQuote(tcpFlow)
	copy(notOurs[12:16], otherReal.AsSlice()) // quoted source: not the vip
	wrongPort := tcpFlow
	wrongPort.dport = vipPort + 1
	laterFragment := replyQuote(tcpFlow)
	binary.BigEndian.PutUint16(laterFragment[6:], 185)

	runFixtures(t, b.Program(), []fixture{
		{name: "frag-needed, flow in the lru", in: pinnedErr, want: xdpTX, out: encapTo(pinnedErr, pinnedReal)},
		{name: "frag-needed, flow unseen", in: unseenErr, want: xdpTX, out: encapTo(unseenErr, r.owner(unseen))},
		{name: "port unreachable", in: portUnreachErr, want: xdpTX, out: encapTo(portUnreachErr, r.owner(unseen))},
		{name: "whole tcp header quoted", in: fullQuote, want: xdpTX, out: encapTo(fullQuote, rDrained.owner(fullTCP))},
		{name: "quote of a packet not from the vip", in: fragNeeded(vipAddr, 1400, notOurs), want: xdpPass},
		{name: "quote of no vip flow", in: fragNeeded(vipAddr, 1400, replyQuote(wrongPort)), want: xdpPass},
		{name: "quote of a later fragment", in: fragNeeded(vipAddr, 1400, laterFragment), want: xdpPass},
		{name: "quote without ports", in: fragNeeded(vipAddr, 1400, replyQuote(tcpFlow)[:ipv4HeaderLen+3]), want: xdpPass},
		{name: "addressed to another host", in: fragNeeded(otherReal, 1400, replyQuote(otherClient)), want: xdpPass},
	}, func(t *testing.T, tt fixture, out []byte) {
		if tt.want == xdpTX {
			checkIPIP(t, out, tt.in, katranAddr, netip.AddrFrom4([4]byte(out[ethHeaderLen+16:ethHeaderLen+20])))
		}
	})

	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// 4 errors and the pinning packet.
	if s.ICMPForwarded != 4 || s.Encapsulated != 5 {
		t.Errorf("icmp forwarded %d of %d encapsulated, want 4 of 5", s.ICMPForwarded, s.Encapsulated)
	}
}

// A router between the balancer and a real with a smaller MTU than the
// balancer was told reports frag-needed to the balancer's own address,
// quoting the outer header: the real's path MTU comes down to it, and the
// client's next big packet is answered at that size.
func TestBalancerLearnsPathMTU(t *testing.T) {
	b := newLabBalancer(t)
	const learned = 1300
	in := tcpFlow.frame(withDF, sized(learned))
	sent := ipipEncap(tcpFlow.frame(), katranAddr, realAddr, routerMAC)
	report := fragNeeded(katranAddr, learned, sent[ethHeaderLen:ethHeaderLen+ipv4HeaderLen+icmpQuotedPayload])

	if got, _ := runXDP(t, b.Program(), in); got != xdpTX {
		t.Fatalf("before the report: %s, want XDP_TX (encapsulated)", got)
	}
	for _, bad := range []struct {
		name string
		in   []byte
	}{
		{"mtu 0 (before RFC 1191)", fragNeeded(katranAddr, 0, sent[ethHeaderLen:ethHeaderLen+ipv4HeaderLen+icmpQuotedPayload])},
		{"not to our address", fragNeeded(otherReal, learned, sent[ethHeaderLen:ethHeaderLen+ipv4HeaderLen+icmpQuotedPayload])},
	} {
		if got, _ := runXDP(t, b.Program(), bad.in); got != xdpPass {
			t.Errorf("%s: %s, want XDP_PASS", bad.name, got)
		}
	}
	runFixtures(t, b.Program(), []fixture{
		{name: "report", in: report, want: xdpPass},
		{name: "too big now", in: in, want: xdpTX, out: icmpTooBig(in, learned)},
	}, nil)

	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.PathMTULowered != 1 || s.TooBig != 1 {
		t.Errorf("path mtu lowered %d, too big %d; want 1 1", s.PathMTULowered, s.TooBig)
	}

	// SetVIP with the same reals keeps what was learned; another MTU for
	// the real replaces it.
	setVIP(t, b, tcpVIP, equal(realAddr))
	if got, out := runXDP(t, b.Program(), in); got != xdpTX || !bytes.Equal(out, icmpTooBig(in, learned)) {
		t.Errorf("after SetVIP with the same reals: %s, want the frag-needed", got)
	}

	// A higher report does not raise what was learned while it holds;
	// once it has expired, the whole path MTU counts again, and a report
	// is learned afresh.
	higher := fragNeeded(katranAddr, learned+100, sent[ethHeaderLen:ethHeaderLen+ipv4HeaderLen+icmpQuotedPayload])
	runFixtures(t, b.Program(), []fixture{
		{name: "higher report", in: higher, want: xdpPass},
		{name: "still too big", in: in, want: xdpTX, out: icmpTooBig(in, learned)},
	}, nil)
	ageLearnedMTU(t, b, realAddr, pmtuExpires+time.Second)
	if got := encapsulatedTo(t, b, tcpFlow, withDF, sized(learned)); got != realAddr {
		t.Errorf("after the learned MTU expired: sent to %s, want %s", got, realAddr)
	}
	runFixtures(t, b.Program(), []fixture{
		{name: "higher report after expiry", in: higher, want: xdpPass},
		{name: "too big at the new size", in: tcpFlow.frame(withDF, sized(learned+100)), want: xdpTX,
			out: icmpTooBig(tcpFlow.frame(withDF, sized(learned+100)), learned+100)},
	}, nil)
	setVIP(t, b, tcpVIP, []Real{{Addr: realAddr, Weight: 1, MTU: labPathMTU}})
	if got := encapsulatedTo(t, b, tcpFlow, withDF, sized(learned)); got != realAddr {
		t.Errorf("after a new MTU: sent to %s, want %s", got, realAddr)
	}
}

// pmtuExpires is PMTU_EXPIRES_NS of dsr_consts.h.
const pmtuExpires = 10 * time.Minute

// ageLearnedMTU moves the time every slot of real learned its path MTU back
// by age, as if the report had come that long ago.
func ageLearnedMTU(t *testing.T, b *Balancer, real netip.Addr, age time.Duration) {
	t.Helper()
	var slot uint32
	var def balancerRealDef
	iter := b.objs.Reals.Iterate()
	aged := 0
	for iter.Next(&slot, &def) {
		if def.Addr != addrWords(real) || def.LearnedMtu == 0 {
			continue
		}
		def.LearnedAt -= uint64(age)
		if err := b.objs.Reals.Put(slot, def); err != nil {
			t.Fatal(err)
		}
		aged++
	}
	if err := iter.Err(); err != nil || aged == 0 {
		t.Fatalf("aged %d slots of %s (%v)", aged, real, err)
	}
}
