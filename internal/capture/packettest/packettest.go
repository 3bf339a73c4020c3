// Package packettest crafts frames for the capture and filter tests:
// Ethernet, IPv4 (with options and fragments), IPv6, IPIP, TCP, UDP, ICMP.
// Checksums are left zero: nothing here is sent to a stack that checks them.
package packettest

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// IP protocol numbers used by the tests.
const (
	ICMP   = 1
	IPIP   = 4
	TCP    = 6
	UDP    = 17
	IPv6   = 41
	ICMPv6 = 58
)

var (
	MACA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	MACB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

// Ethernet wraps an IPv4 or IPv6 packet, or an ARP body, in a frame
// from MACA to MACB; the EtherType follows the payload's version nibble
// unless given.
func Ethernet(payload []byte, etherType ...uint16) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f[0:6], MACB)
	copy(f[6:12], MACA)
	t := uint16(0x0800)
	switch {
	case len(etherType) > 0:
		t = etherType[0]
	case len(payload) > 0 && payload[0]>>4 == 6:
		t = 0x86dd
	}
	binary.BigEndian.PutUint16(f[12:], t)
	return append(f, payload...)
}

// IPv4Header is an IPv4 header; Options must be a multiple of 4 bytes.
type IPv4Header struct {
	Src, Dst   netip.Addr
	Proto      uint8
	TTL        uint8
	Options    []byte
	FragOffset uint16 // in 8-byte units
	MoreFrags  bool
}

func (h IPv4Header) Marshal(payload []byte) []byte {
	hl := 20 + len(h.Options)
	b := make([]byte, hl, hl+len(payload))
	b[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(b[2:], uint16(hl+len(payload)))
	frag := h.FragOffset & 0x1fff
	if h.MoreFrags {
		frag |= 0x2000
	}
	binary.BigEndian.PutUint16(b[6:], frag)
	b[8] = h.TTL
	if b[8] == 0 {
		b[8] = 64
	}
	b[9] = h.Proto
	s, d := h.Src.As4(), h.Dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], h.Options)
	return append(b, payload...)
}

// IPv6Header is a fixed IPv6 header, with no extension headers.
type IPv6Header struct {
	Src, Dst netip.Addr
	Next     uint8
}

func (h IPv6Header) Marshal(payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6] = h.Next
	b[7] = 64
	s, d := h.Src.As16(), h.Dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, payload...)
}

// TCP flag bits.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
)

type TCPHeader struct {
	SrcPort, DstPort uint16
	Flags            uint8
	Seq, Ack         uint32
}

func (h TCPHeader) Marshal(payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(b[0:], h.SrcPort)
	binary.BigEndian.PutUint16(b[2:], h.DstPort)
	binary.BigEndian.PutUint32(b[4:], h.Seq)
	binary.BigEndian.PutUint32(b[8:], h.Ack)
	b[12] = 5 << 4
	b[13] = h.Flags
	binary.BigEndian.PutUint16(b[14:], 64240)
	return append(b, payload...)
}

type UDPHeader struct{ SrcPort, DstPort uint16 }

func (h UDPHeader) Marshal(payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], h.SrcPort)
	binary.BigEndian.PutUint16(b[2:], h.DstPort)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

// ICMPHeader is an ICMP or ICMPv6 message; Rest is the 4 bytes after the
// checksum (echo id and sequence, or the MTU of "too big").
type ICMPHeader struct {
	Type, Code uint8
	Rest       uint32
}

func (h ICMPHeader) Marshal(payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	b[0], b[1] = h.Type, h.Code
	binary.BigEndian.PutUint32(b[4:], h.Rest)
	return append(b, payload...)
}

// Addr parses an address that the test wrote itself.
func Addr(s string) netip.Addr { return netip.MustParseAddr(s) }
