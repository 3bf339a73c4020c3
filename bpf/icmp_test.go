//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/dsrlab/dsrlab/internal/testns"
)

const (
	icmpHeaderLen   = 8
	icmpEchoReply   = 0
	icmpDestUnreach = 3
	icmpEchoRequest = 8
	icmpFragNeeded  = 4
	icmpPortUnreach = 3
	// RFC 1812: quote as much as fits in 576 bytes; a shorter packet is
	// quoted for the largest IPv4 header plus RFC 792's 64 bits.
	icmpQuoteMax = 576 - ipv4HeaderLen - icmpHeaderLen
	icmpQuoteMin = 60 + 8
)

// icmpTooBig is what the balancer must send back for a too-big frame in:
// an IPv4 packet from the VIP to the client, ICMP type 3 code 4 with the
// next-hop MTU the encapsulation leaves, quoting the start of in's IP
// packet, in a frame returned to the router it came from.
func icmpTooBig(in []byte, pathMTU int) []byte {
	ip := in[ethHeaderLen:]
	quote := icmpQuoteMin
	if binary.BigEndian.Uint16(ip[2:]) >= icmpQuoteMax {
		quote = icmpQuoteMax
	}
	var mtu [4]byte
	binary.BigEndian.PutUint16(mtu[2:], uint16(pathMTU-ipv4HeaderLen))
	msg := icmpMessage(icmpDestUnreach, icmpFragNeeded, mtu, ip[:quote])

	hdr := make([]byte, ipv4HeaderLen)
	hdr[0] = 4<<4 | ipv4HeaderLen/4
	binary.BigEndian.PutUint16(hdr[2:], uint16(ipv4HeaderLen+len(msg)))
	hdr[8] = originTTL
	hdr[9] = protoICMP
	copy(hdr[12:16], ip[16:20]) // from the VIP
	copy(hdr[16:20], ip[12:16]) // to the client
	binary.BigEndian.PutUint16(hdr[10:], ipChecksum(hdr))
	return ethFrame(in[6:12], in[0:6], etherTypeIPv4, append(hdr, msg...))
}

// icmpMessage is an ICMP message with its checksum: type, code, the four
// bytes after the checksum, and the body.
func icmpMessage(typ, code byte, rest [4]byte, body []byte) []byte {
	msg := make([]byte, icmpHeaderLen, icmpHeaderLen+len(body))
	msg[0], msg[1] = typ, code
	copy(msg[4:], rest[:])
	msg = append(msg, body...)
	binary.BigEndian.PutUint16(msg[2:], ipChecksum(msg))
	return msg
}

// icmpFrame is an ICMP packet src->dst as the router hands it to the
// balancer.
func icmpFrame(src, dst netip.Addr, msg []byte, tweaks ...func(*ipv4Packet)) []byte {
	p := ipv4Packet{src: src, dst: dst, proto: protoICMP, payload: msg}
	for _, tweak := range tweaks {
		tweak(&p)
	}
	return ethFrame(katranMAC, routerMAC, etherTypeIPv4, p.marshal())
}

func TestBalancerTooBig(t *testing.T) {
	b := newLabBalancer(t)
	// The largest inner packet that fits the path once encapsulated.
	const fits = labPathMTU - ipv4HeaderLen

	bigTCP := tcpFlow.frame(withDF, sized(fits+1))
	bigUDP := udpFlow.frame(withDF, sized(labPathMTU))
	otherBig := tcpFlow
	otherBig.dst = netip.MustParseAddr("192.168.10.2")
	// tot_len fits, but the frame, trailer and all, would not: the
	// trailer is cut, the packet sent.
	fitsFrame := tcpFlow.frame(withDF, sized(fits))
	trailer := append(bytes.Clone(fitsFrame), 0xee)
	runFixtures(t, b.Program(), []fixture{
		{name: "tcp one byte too big", in: bigTCP, want: xdpTX, out: icmpTooBig(bigTCP, labPathMTU)},
		{name: "udp at the link mtu", in: bigUDP, want: xdpTX, out: icmpTooBig(bigUDP, labPathMTU)},
		{name: "exactly fits", in: tcpFlow.frame(withDF, sized(fits)), want: xdpTX,
			out: ipipEncap(tcpFlow.frame(withDF, sized(fits)), katranAddr, realAddr, routerMAC)},
		{name: "trailer alone makes it too big", in: trailer, want: xdpTX, out: ipipEncap(fitsFrame, katranAddr, realAddr, routerMAC)},
		{name: "too big without DF", in: tcpFlow.frame(sized(fits + 1)), want: xdpDrop},
		{name: "too big, not for a vip", in: otherBig.frame(withDF, sized(labPathMTU)), want: xdpPass},
	}, func(t *testing.T, _ fixture, out []byte) {
		if len(out) > ethHeaderLen+ipv4HeaderLen && out[ethHeaderLen+9] == protoICMP {
			checkICMPChecksums(t, out)
		}
	})

	s, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.TooBig != 2 || s.Passed != 1 || s.Encapsulated != 2 || s.Dropped != 1 || s.DroppedTooBig != 1 {
		t.Errorf("too big %d passed %d encapsulated %d dropped %d (too big %d), want 2 1 2 1 (1)",
			s.TooBig, s.Passed, s.Encapsulated, s.Dropped, s.DroppedTooBig)
	}
	// Only the encapsulated ones, without the cut trailer.
	if c := s.VIPs[tcpVIP]; c.Packets != 2 || c.Bytes != 2*uint64(len(fitsFrame)) {
		t.Errorf("tcp vip counted %d packets, %d bytes; want 2, %d", c.Packets, c.Bytes, 2*len(fitsFrame))
	}
}

// Too big is the packet's length, not its frame's. A 43-byte UDP datagram
// followed by 1520 bytes that are no part of it (a trailer: tot_len is
// less than the frame) fits the path; the frame does not. The trailer is
// cut and the datagram sent. Answering frag-needed instead would quote 25
// trailer bytes after the 43 of the datagram.
func TestBalancerTrailerIsNoPartOfThePacket(t *testing.T) {
	b := newLabBalancer(t)
	datagram := hexFrame(`4500 002b 1234 4000 3f11 786a 0a6fdc0b c0a80a01
		9ea5 0035 0017 6dc7 4142434445464748494a4b4c4d4e4f`)
	in := slices.Concat(hexFrame(`02d500000011 02d500000012 0800`), datagram, bytes.Repeat([]byte{0xee}, 1520))
	// IPIP from katran to the real: tot_len 63, DF, TTL 64.
	out := slices.Concat(hexFrame(`02d500000012 02d500000011 0800
		4500 003f 0000 4000 4004 6ac6 0a6fdd0b 0a6fde0b`), datagram)

	// A datagram too big for the path, trailer or not, is quoted from
	// its own bytes only.
	big := udpFlow.frame(withDF, sized(labPathMTU-ipv4HeaderLen+1))
	bigTrailer := append(bytes.Clone(big), bytes.Repeat([]byte{0xee}, 100)...)
	runFixtures(t, b.Program(), []fixture{
		{name: "43 bytes, 1520 trailer bytes", in: in, want: xdpTX, out: out},
		{name: "too big, with a trailer", in: bigTrailer, want: xdpTX, out: icmpTooBig(big, labPathMTU)},
	}, nil)

	s := stats(t, b)
	if c := s.VIPs[udpVIP]; c.Packets != 1 || c.Bytes != uint64(ethHeaderLen+len(datagram)) {
		t.Errorf("udp vip counted %d packets, %d bytes; want 1, %d", c.Packets, c.Bytes, ethHeaderLen+len(datagram))
	}
}

// checkICMPChecksums verifies the reply's own checksums, independently of
// the expected bytes.
func checkICMPChecksums(t *testing.T, frame []byte) {
	t.Helper()
	ip := frame[ethHeaderLen:]
	hl := int(ip[0]&0xf) * 4
	if ipChecksum(ip[:hl]) != 0 {
		t.Error("ICMP reply: bad IP header checksum")
	}
	if ipChecksum(ip[hl:binary.BigEndian.Uint16(ip[2:])]) != 0 {
		t.Error("ICMP reply: bad ICMP checksum")
	}
}

// xdpMD is the kernel's struct xdp_md, the context of an XDP test run.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// In generic XDP, GRO can hand the program an aggregate of client packets
// that is longer than the ingress link's MTU. No client sent it, so no
// ICMP: it is encapsulated whole. The test run pretends the frame arrived
// on a 1500-byte veth.
func TestBalancerTooBigSparesGROAggregates(t *testing.T) {
	b := newLabBalancer(t)
	const aggregate = 2 * labPathMTU
	in := tcpFlow.frame(withDF, sized(aggregate))

	testns.Enter(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "dsr0", MTU: labPathMTU}, PeerName: "dsr1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	link, err := netlink.LinkByName(veth.Name)
	if err != nil {
		t.Fatal(err)
	}

	opts := ebpf.RunOptions{
		Data:    in,
		DataOut: make([]byte, len(in)+ipv4HeaderLen),
		Context: xdpMD{DataEnd: uint32(len(in)), IngressIfindex: uint32(link.Attrs().Index)},
		Repeat:  1,
	}
	ret, err := b.Program().Run(&opts)
	if err != nil {
		skipIfUnsupported(t, err)
		t.Fatal(err)
	}
	if xdpAction(ret) != xdpTX {
		t.Fatalf("verdict %s, want XDP_TX", xdpAction(ret))
	}
	checkIPIP(t, opts.DataOut, in, katranAddr, realAddr)
}
