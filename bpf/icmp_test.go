//go:build linux

package bpf

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/dsrlab/dsrlab/internal/testns"
)

const (
	icmpHeaderLen     = 8
	icmpDestUnreach   = 3
	icmpFragNeeded    = 4
	icmpQuotedPayload = 8 // RFC 792: the first 64 bits of the datagram's data
)

// icmpTooBig is what the balancer must send back for a too-big frame in:
// an IPv4 packet from the VIP to the client, ICMP type 3 code 4 with the
// next-hop MTU the encapsulation leaves, quoting in's IP header and first
// 8 payload bytes, in a frame returned to the router it came from.
func icmpTooBig(in []byte, pathMTU int) []byte {
	ip := in[ethHeaderLen:]
	msg := make([]byte, icmpHeaderLen, icmpHeaderLen+ipv4HeaderLen+icmpQuotedPayload)
	msg[0], msg[1] = icmpDestUnreach, icmpFragNeeded
	binary.BigEndian.PutUint16(msg[6:], uint16(pathMTU-ipv4HeaderLen))
	msg = append(msg, ip[:ipv4HeaderLen+icmpQuotedPayload]...)
	binary.BigEndian.PutUint16(msg[2:], ipChecksum(msg))

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

func TestBalancerTooBig(t *testing.T) {
	b := newLabBalancer(t)
	// The largest inner packet that fits the path once encapsulated.
	const fits = labPathMTU - ipv4HeaderLen

	bigTCP := tcpFlow.frame(withDF, sized(fits+1))
	bigUDP := udpFlow.frame(withDF, sized(labPathMTU))
	otherBig := tcpFlow
	otherBig.dst = netip.MustParseAddr("192.168.10.2")
	runFixtures(t, b.Program(), []fixture{
		{name: "tcp one byte too big", in: bigTCP, want: xdpTX, out: icmpTooBig(bigTCP, labPathMTU)},
		{name: "udp at the link mtu", in: bigUDP, want: xdpTX, out: icmpTooBig(bigUDP, labPathMTU)},
		{name: "exactly fits", in: tcpFlow.frame(withDF, sized(fits)), want: xdpTX,
			out: ipipEncap(tcpFlow.frame(withDF, sized(fits)), katranAddr, realAddr, routerMAC)},
		{name: "too big without DF", in: tcpFlow.frame(sized(fits + 1)), want: xdpPass},
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
	if s.TooBig != 2 || s.Passed != 2 || s.Encapsulated != 1 {
		t.Errorf("too big %d passed %d encapsulated %d, want 2 2 1", s.TooBig, s.Passed, s.Encapsulated)
	}
	if c := s.VIPs[tcpVIP]; c.Packets != 1 {
		t.Errorf("tcp vip counted %d packets, want only the encapsulated one", c.Packets)
	}
}

// checkICMPChecksums verifies the reply's own checksums, independently of
// the expected bytes.
func checkICMPChecksums(t *testing.T, frame []byte) {
	t.Helper()
	ip := frame[ethHeaderLen:]
	if ipChecksum(ip[:ipv4HeaderLen]) != 0 {
		t.Error("ICMP reply: bad IP header checksum")
	}
	if ipChecksum(ip[ipv4HeaderLen:]) != 0 {
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
