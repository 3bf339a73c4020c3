//go:build linux

package bpf

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// IPv6 frame builders for the packet tests, independent of the C code like
// packet_test.go's.

const (
	protoIPv6    = 41
	protoICMPv6  = 58
	extHopByHop  = 0
	extRouting   = 43
	extFragment  = 44
	extDestOpts  = 60
	icmp6TooBig  = 2
	icmp6Unreach = 1
	icmp6EchoReq = 128
	icmp6EchoRep = 129
	icmp6NS      = 135
	// RFC 4443 2.4 (c): as much as fits in 1280 bytes.
	icmp6Quote = 1280 - ipv6HeaderLen - icmpHeaderLen
)

// The dual-stack lab's addresses (ULA), beside the IPv4 ones.
var (
	client6     = netip.MustParseAddr("fd00:111:220::11")
	vip6        = netip.MustParseAddr("fd00:77::1")
	katran6     = netip.MustParseAddr("fd00:111:221::11")
	real6       = netip.MustParseAddr("fd00:111:222::11")
	otherReal6  = netip.MustParseAddr("fd00:111:222::21")
	router6     = netip.MustParseAddr("fd00:111:222::1")
	vip4Over6   = netip.MustParseAddr("192.168.10.4")
	tcpVIP6     = VIP{Addr: vip6, Port: vipPort, Proto: ProtoTCP}
	udpVIP6     = VIP{Addr: vip6, Port: 53, Proto: ProtoUDP}
	tcpVIP4in6  = VIP{Addr: vip4Over6, Port: vipPort, Proto: ProtoTCP}
	tcpFlow6    = flow{src: client6, dst: vip6, sport: 40612, dport: vipPort, proto: uint8(ProtoTCP)}
	udpFlow6    = flow{src: client6, dst: vip6, sport: 40613, dport: 53, proto: uint8(ProtoUDP)}
	tcpFlow4in6 = flow{src: clientAddr, dst: vip4Over6, sport: 40614, dport: vipPort, proto: uint8(ProtoTCP)}
)

// ipv6Ext is one extension header: its type and what follows its next
// header and length bytes (6 + 8n bytes; a fragment header's 6 bytes).
type ipv6Ext struct {
	typ  uint8
	body []byte
}

// ipv6Packet is an IPv6 packet before marshalling.
type ipv6Packet struct {
	src, dst netip.Addr
	proto    uint8
	tclass   uint8
	exts     []ipv6Ext
	payload  []byte
	// payloadLen, if not zero, replaces the true payload length.
	payloadLen int
}

func (p ipv6Packet) marshal() []byte {
	var chain []byte
	next := p.proto
	for i := len(p.exts) - 1; i >= 0; i-- {
		e := p.exts[i]
		hdr := []byte{next, 0}
		if e.typ != extFragment {
			hdr[1] = byte((len(e.body)+2)/8 - 1)
		}
		chain = append(append(hdr, e.body...), chain...)
		next = e.typ
	}
	b := make([]byte, ipv6HeaderLen, ipv6HeaderLen+len(chain)+len(p.payload))
	binary.BigEndian.PutUint32(b[0:], 6<<28|uint32(p.tclass)<<20|0x12345)
	payloadLen := len(chain) + len(p.payload)
	if p.payloadLen != 0 {
		payloadLen = p.payloadLen
	}
	binary.BigEndian.PutUint16(b[4:], uint16(payloadLen))
	b[6] = next
	b[7] = clientTTL
	src, dst := p.src.As16(), p.dst.As16()
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	return append(append(b, chain...), p.payload...)
}

// destOpts is a destination options (or hop-by-hop) body of PadN only.
func padOpts(units int) []byte {
	body := make([]byte, 6+8*units)
	body[0], body[1] = 1, byte(len(body)-2) // PadN
	return body
}

// fragBody is a fragment header's body: offset in 8-byte units, M.
func fragBody(offset uint16, more bool) []byte {
	b := make([]byte, 6)
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[0:], v)
	binary.BigEndian.PutUint32(b[2:], 0xabcd)
	return b
}

// routingBody is a type-0-shaped routing header with segments left and
// one address.
func routingBody(segmentsLeft uint8) []byte {
	b := make([]byte, 6+16)
	b[0], b[1] = 0, segmentsLeft
	copy(b[6:], otherReal6.AsSlice())
	return b
}

// frame6 builds one IPv6 packet of f as the router sends it.
func (f flow) frame6(tweaks ...func(*ipv6Packet)) []byte {
	p := ipv6Packet{src: f.src, dst: f.dst, proto: f.proto, payload: f.l4()}
	for _, tweak := range tweaks {
		tweak(&p)
	}
	return ethFrame(katranMAC, routerMAC, etherTypeIPv6, p.marshal())
}

// sized6 pads a TCP or UDP packet's payload to make it l3Len bytes of IP.
func sized6(l3Len int) func(*ipv6Packet) {
	return func(p *ipv6Packet) {
		sport, dport := binary.BigEndian.Uint16(p.payload[0:]), binary.BigEndian.Uint16(p.payload[2:])
		switch Proto(p.proto) {
		case ProtoTCP:
			p.payload = tcpSegment(sport, dport, make([]byte, l3Len-ipv6HeaderLen-tcpHeaderLen))
		case ProtoUDP:
			p.payload = udpDatagram(sport, dport, make([]byte, l3Len-ipv6HeaderLen-udpHeaderLen))
		}
	}
}

// ipLen is the length of the IP packet in frame as its header says.
func ipLen(frame []byte) int {
	ip := frame[ethHeaderLen:]
	if ip[0]>>4 == 6 {
		return ipv6HeaderLen + int(binary.BigEndian.Uint16(ip[4:]))
	}
	return int(binary.BigEndian.Uint16(ip[2:]))
}

// tclassOf is the DSCP/ECN byte of the IP packet in frame.
func tclassOf(frame []byte) byte {
	ip := frame[ethHeaderLen:]
	if ip[0]>>4 == 6 {
		return byte(binary.BigEndian.Uint16(ip[0:]) >> 4)
	}
	return ip[1]
}

// ip6Encap is what the balancer must send for frame in to an IPv6 real:
// an outer IPv6 header src->real (next header 41 for IPv6, 4 for IPv4,
// traffic class copied, flow label 0, hop limit 64, payload length the
// inner packet's), and in's IP packet with any padding unchanged.
func ip6Encap(in []byte, src, real netip.Addr, nextHop net.HardwareAddr) []byte {
	inner := in[ethHeaderLen:]
	outer := make([]byte, ipv6HeaderLen)
	binary.BigEndian.PutUint32(outer[0:], 6<<28|uint32(tclassOf(in))<<20)
	binary.BigEndian.PutUint16(outer[4:], uint16(ipLen(in)))
	outer[6] = protoIPIP
	if inner[0]>>4 == 6 {
		outer[6] = protoIPv6
	}
	outer[7] = originTTL
	s, d := src.As16(), real.As16()
	copy(outer[8:], s[:])
	copy(outer[24:], d[:])
	return ethFrame(nextHop, in[:6], etherTypeIPv6, append(outer, inner...))
}

// icmp6Checksum is the ICMPv6 checksum of msg from src to dst, the
// pseudo-header included (RFC 8200 8.1); zero over a correct message.
func icmp6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	pseudo := append(src.AsSlice(), dst.AsSlice()...)
	pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(msg)))
	pseudo = append(pseudo, 0, 0, 0, protoICMPv6)
	return ipChecksum(append(pseudo, msg...))
}

// icmp6Message is an ICMPv6 message src->dst with its checksum.
func icmp6Message(src, dst netip.Addr, typ, code byte, rest [4]byte, body []byte) []byte {
	msg := append([]byte{typ, code, 0, 0}, rest[:]...)
	msg = append(msg, body...)
	binary.BigEndian.PutUint16(msg[2:], icmp6Checksum(src, dst, msg))
	return msg
}

// icmp6Frame is an ICMPv6 packet src->dst as the router hands it over.
func icmp6Frame(src, dst netip.Addr, msg []byte, tweaks ...func(*ipv6Packet)) []byte {
	p := ipv6Packet{src: src, dst: dst, proto: protoICMPv6, payload: msg}
	for _, tweak := range tweaks {
		tweak(&p)
	}
	return ethFrame(katranMAC, routerMAC, etherTypeIPv6, p.marshal())
}

// icmp6TooBigReply is the Packet Too Big the balancer must send for frame
// in: from the VIP to the client, hop limit 64, advertising mtu, quoting
// icmp6Quote bytes of in's IP packet, returned to the router.
func icmp6TooBigReply(in []byte, mtu int) []byte {
	ip := in[ethHeaderLen:]
	client := netip.AddrFrom16([16]byte(ip[8:24]))
	vip := netip.AddrFrom16([16]byte(ip[24:40]))
	var rest [4]byte
	binary.BigEndian.PutUint32(rest[:], uint32(mtu))
	msg := icmp6Message(vip, client, icmp6TooBig, 0, rest, ip[:icmp6Quote])
	hdr := make([]byte, ipv6HeaderLen)
	hdr[0] = 6 << 4
	binary.BigEndian.PutUint16(hdr[4:], uint16(len(msg)))
	hdr[6] = protoICMPv6
	hdr[7] = originTTL
	copy(hdr[8:], vip.AsSlice())
	copy(hdr[24:], client.AsSlice())
	return ethFrame(in[6:12], in[0:6], etherTypeIPv6, append(hdr, msg...))
}

// outerDst6 is the outer destination of an IPv6-encapsulated frame.
func outerDst6(out []byte) netip.Addr {
	return netip.AddrFrom16([16]byte(out[ethHeaderLen+24 : ethHeaderLen+40]))
}
