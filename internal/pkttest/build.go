package pkttest

import (
	"encoding/binary"
	"fmt"
)

var be = binary.BigEndian

// Build returns the bytes of a packet given as layers, outermost first.
// What a layer leaves out is computed from the layers after it: lengths,
// EtherTypes, protocol numbers, header lengths and checksums (a checksum
// given, even a wrong one, is written as given: that is how a test sends
// a bad one). Other fields left out are zero, except TTLs (64) and the TCP
// window (65535).
func Build(layers []Layer) ([]byte, error) {
	var rest []byte
	for i := len(layers) - 1; i >= 0; i-- {
		l := &layers[i]
		next := ""
		if i+1 < len(layers) {
			next = layers[i+1].Kind
		}
		var err error
		switch l.Kind {
		case "eth":
			rest = buildEth(l, next, rest)
		case "vlan":
			rest = buildVLAN(l, next, rest)
		case "ipv4":
			rest = buildIPv4(l, next, rest)
		case "ipv6":
			rest = buildIPv6(l, next, rest)
		case "hop", "dest", "routing", "frag":
			rest = buildExt(l, next, rest)
		case "tcp", "udp", "icmp", "icmpv6":
			rest, err = buildTransport(l, enclosingIP(layers, i), rest)
		case "payload":
			data := l.bytes("data")
			if !l.has("data") {
				data = make([]byte, l.num("size", 0))
			}
			rest = append(append([]byte(nil), data...), rest...)
		default:
			err = fmt.Errorf("no layer %q", l.Kind)
		}
		if err != nil {
			return nil, err
		}
	}
	return rest, nil
}

// enclosingIP is the IP header a transport header's checksum covers: the
// nearest before it.
func enclosingIP(layers []Layer, i int) *Layer {
	for j := i - 1; j >= 0; j-- {
		if isIP(layers[j].Kind) {
			return &layers[j]
		}
	}
	return nil
}

func etherTypeOf(next string) uint64 {
	switch next {
	case "vlan":
		return 0x8100
	case "ipv4":
		return 0x0800
	case "ipv6":
		return 0x86dd
	}
	return 0
}

// protoOf is the protocol number (IPv4) or next header (IPv6) announcing
// the layer after an IP or extension header; 59 ("no next header") for
// a bare payload.
func protoOf(next string) uint64 {
	if next == "payload" || next == "" {
		return protocols["none"]
	}
	return protocols[next]
}

func buildEth(l *Layer, next string, rest []byte) []byte {
	b := make([]byte, 14, 14+len(rest))
	copy(b[0:6], pad(l.bytes("dst"), 6))
	copy(b[6:12], pad(l.bytes("src"), 6))
	be.PutUint16(b[12:], uint16(l.num("type", etherTypeOf(next))))
	return append(b, rest...)
}

func buildVLAN(l *Layer, next string, rest []byte) []byte {
	b := make([]byte, 4, 4+len(rest))
	be.PutUint16(b, uint16(l.num("pcp", 0)<<13|l.num("dei", 0)<<12|l.num("id", 0)))
	be.PutUint16(b[2:], uint16(l.num("type", etherTypeOf(next))))
	return append(b, rest...)
}

func pad(b []byte, n int) []byte {
	if len(b) >= n {
		return b
	}
	return append(append([]byte{}, b...), make([]byte, n-len(b))...)
}

func buildIPv4(l *Layer, next string, rest []byte) []byte {
	opts := l.bytes("options")
	opts = pad(opts, (len(opts)+3)/4*4)
	hl := 20 + len(opts)
	b := make([]byte, hl, hl+len(rest))
	b[0] = 0x40 | byte(l.num("ihl", uint64(hl/4)))
	b[1] = byte(l.num("tos", 0))
	be.PutUint16(b[2:], uint16(l.num("len", uint64(hl+len(rest)))))
	be.PutUint16(b[4:], uint16(l.num("id", 0)))
	be.PutUint16(b[6:], uint16(l.num("df", 0)<<14|l.num("mf", 0)<<13|l.num("frag", 0)))
	b[8] = byte(l.num("ttl", 64))
	b[9] = byte(l.num("proto", protoOf(next)))
	copy(b[12:16], pad(l.bytes("src"), 4))
	copy(b[16:20], pad(l.bytes("dst"), 4))
	copy(b[20:], opts)
	be.PutUint16(b[10:], uint16(l.num("checksum", uint64(checksum(b, 0)))))
	return append(b, rest...)
}

func buildIPv6(l *Layer, next string, rest []byte) []byte {
	b := make([]byte, 40, 40+len(rest))
	be.PutUint32(b, 6<<28|uint32(l.num("tos", 0))<<20|uint32(l.num("flow", 0)))
	be.PutUint16(b[4:], uint16(l.num("len", uint64(len(rest)))))
	b[6] = byte(l.num("proto", protoOf(next)))
	b[7] = byte(l.num("ttl", 64))
	copy(b[8:24], pad(l.bytes("src"), 16))
	copy(b[24:40], pad(l.bytes("dst"), 16))
	return append(b, rest...)
}

// buildExt writes an IPv6 extension header. Options headers (hop, dest)
// are padded to 8 bytes with Pad1/PadN options, as the RFC asks.
func buildExt(l *Layer, next string, rest []byte) []byte {
	proto := byte(l.num("proto", protoOf(next)))
	data := l.bytes("data")
	var b []byte
	switch l.Kind {
	case "frag":
		b = make([]byte, 8)
		be.PutUint16(b[2:], uint16(l.num("offset", 0)<<3|l.num("more", 0)))
		be.PutUint32(b[4:], uint32(l.num("id", 0)))
	case "routing":
		b = append([]byte{0, 0, byte(l.num("type", 0)), byte(l.num("left", 0))}, data...)
		b = pad(b, max(8, (len(b)+7)/8*8))
	default:
		b = append([]byte{0, 0}, data...)
		switch n := (8 - len(b)%8) % 8; n {
		case 0:
		case 1:
			b = append(b, 0) // Pad1
		default:
			b = append(b, 1, byte(n-2)) // PadN
			b = append(b, make([]byte, n-2)...)
		}
	}
	b[0] = proto
	if l.Kind != "frag" {
		b[1] = byte(len(b)/8 - 1)
	}
	return append(b, rest...)
}

func buildTransport(l *Layer, ip *Layer, rest []byte) ([]byte, error) {
	var b []byte
	var proto uint8
	var sumAt int
	switch l.Kind {
	case "tcp":
		opts := l.bytes("options")
		opts = pad(opts, (len(opts)+3)/4*4)
		b = make([]byte, 20, 20+len(opts)+len(rest))
		be.PutUint16(b, uint16(l.num("sport", 0)))
		be.PutUint16(b[2:], uint16(l.num("dport", 0)))
		be.PutUint32(b[4:], uint32(l.num("seq", 0)))
		be.PutUint32(b[8:], uint32(l.num("ack", 0)))
		b[12] = byte(l.num("off", uint64(5+len(opts)/4))) << 4
		b[13] = byte(l.num("flags", 0))
		be.PutUint16(b[14:], uint16(l.num("win", 65535)))
		be.PutUint16(b[18:], uint16(l.num("urg", 0)))
		b = append(b, opts...)
		proto, sumAt = 6, 16
	case "udp":
		b = make([]byte, 8, 8+len(rest))
		be.PutUint16(b, uint16(l.num("sport", 0)))
		be.PutUint16(b[2:], uint16(l.num("dport", 0)))
		be.PutUint16(b[4:], uint16(l.num("len", uint64(8+len(rest)))))
		proto, sumAt = 17, 6
	case "icmp", "icmpv6":
		b = make([]byte, 8, 8+len(rest))
		b[0], b[1] = byte(l.num("type", 0)), byte(l.num("code", 0))
		be.PutUint32(b[4:], uint32(icmpRest(l)))
		proto, sumAt = 1, 2
		if l.Kind == "icmpv6" {
			proto = 58
		}
	}
	b = append(b, rest...)
	if f, ok := l.Get("checksum"); ok {
		be.PutUint16(b[sumAt:], uint16(f.Value.Num))
		return b, nil
	}
	var sum uint16
	if proto == 1 {
		sum = checksum(b, 0)
	} else {
		if ip == nil {
			return nil, fmt.Errorf("%s: its checksum covers an IP header, and none comes before it: add one, or give the checksum", l.Kind)
		}
		sum = checksum(b, pseudoHeader(ip, proto, len(b)))
		if sum == 0 && proto == 17 {
			sum = 0xffff // 0 means "no checksum" in UDP
		}
	}
	be.PutUint16(b[sumAt:], sum)
	return b, nil
}

// icmpRest is the 4 bytes after an ICMP checksum: given whole, or as an
// echo's id and sequence, or the MTU of "fragmentation needed" (its low
// 16 bits) and ICMPv6 "packet too big" (all 32).
func icmpRest(l *Layer) uint64 {
	if f, ok := l.Get("rest"); ok {
		return f.Value.Num
	}
	rest := l.num("id", 0)<<16 | l.num("seq", 0)
	if f, ok := l.Get("mtu"); ok {
		if l.Kind == "icmpv6" {
			return f.Value.Num
		}
		rest = rest&^0xffff | f.Value.Num
	}
	return rest
}

// pseudoHeader is the sum of the pseudo-header a TCP, UDP or ICMPv6
// checksum covers (RFC 793, RFC 8200 8.1).
func pseudoHeader(ip *Layer, proto uint8, length int) uint32 {
	var p []byte
	p = append(p, ip.bytes("src")...)
	p = append(p, ip.bytes("dst")...)
	if ip.Kind == "ipv6" {
		p = be.AppendUint32(p, uint32(length))
		p = append(p, 0, 0, 0, proto)
	} else {
		p = append(p, 0, proto)
		p = be.AppendUint16(p, uint16(length))
	}
	return sum16(p, 0)
}

// sum16 adds b's 16-bit words to sum (RFC 1071), without folding.
func sum16(b []byte, sum uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(be.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

// checksum is the Internet checksum of b, with sum (a pseudo-header's)
// added: the value to write into a zeroed checksum field, or 0 when b
// already holds a correct one.
func checksum(b []byte, sum uint32) uint16 {
	s := sum16(b, sum)
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
