package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/dsrlab/dsrlab/internal/capture/filter"
)

// Frame is a decoded packet, for printing and for tools that follow a
// flow (trace).
type Frame struct {
	SrcMAC, DstMAC net.HardwareAddr // nil on raw IP links
	EtherType      uint16
	// IP holds the IP headers, outermost first: two or more for tunnelled
	// packets (IPIP, IPv6 in IP).
	IP  []IPHeader
	ARP *ARP
	// Truncated: the capture ended inside a header.
	Truncated bool
}

// IPHeader is an IPv4 or IPv6 header and, for the innermost one, the
// transport header it carries.
type IPHeader struct {
	Src, Dst netip.Addr
	Proto    uint8 // protocol or next header
	TTL      uint8 // or hop limit
	// Fragment: a non-first IPv4 fragment, which carries no transport
	// header.
	Fragment bool
	// Transport: the fields below were read (TCP, UDP, ICMP, ICMPv6 in
	// full).
	Transport bool

	SrcPort, DstPort uint16 // TCP, UDP
	TCPFlags         uint8
	Seq, Ack         uint32
	ICMPType         uint8 // ICMP, ICMPv6
	ICMPCode         uint8
	ICMPRest         uint32 // echo id<<16|seq, MTU of "too big"...
	Payload          int    // bytes after the transport header
}

// ARP is an ARP request or reply for IPv4 over Ethernet.
type ARP struct {
	Op                   uint16
	SenderMAC, TargetMAC net.HardwareAddr
	SenderIP, TargetIP   netip.Addr
}

const (
	protoICMP   = 1
	protoIPIP   = 4
	protoTCP    = 6
	protoUDP    = 17
	protoIPv6   = 41
	protoICMPv6 = 58
)

// Decode reads the headers of a frame of the given link type. It never
// fails: what cannot be read is left out and Truncated set.
func Decode(data []byte, link filter.LinkType) Frame {
	var f Frame
	if link == filter.Ethernet {
		if len(data) < 14 {
			f.Truncated = true
			return f
		}
		f.DstMAC, f.SrcMAC = net.HardwareAddr(data[0:6]), net.HardwareAddr(data[6:12])
		f.EtherType = binary.BigEndian.Uint16(data[12:14])
		data = data[14:]
		switch f.EtherType {
		case 0x0806:
			f.ARP, f.Truncated = decodeARP(data)
			return f
		case 0x0800, 0x86dd:
		default:
			return f
		}
	}
	f.decodeIP(data)
	return f
}

func decodeARP(b []byte) (*ARP, bool) {
	// Ethernet/IPv4 only: hardware type 1, protocol 0x800, sizes 6 and 4.
	if len(b) < 28 || b[4] != 6 || b[5] != 4 {
		return nil, true
	}
	return &ARP{
		Op:        binary.BigEndian.Uint16(b[6:8]),
		SenderMAC: net.HardwareAddr(b[8:14]), SenderIP: netip.AddrFrom4([4]byte(b[14:18])),
		TargetMAC: net.HardwareAddr(b[18:24]), TargetIP: netip.AddrFrom4([4]byte(b[24:28])),
	}, false
}

func (f *Frame) decodeIP(b []byte) {
	if len(b) < 1 {
		f.Truncated = true
		return
	}
	var h IPHeader
	var payload []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) < 20 || ihl < 20 || len(b) < ihl {
			f.Truncated = true
			return
		}
		h.Src, h.Dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		h.Proto, h.TTL = b[9], b[8]
		h.Fragment = binary.BigEndian.Uint16(b[6:8])&0x1fff != 0
		payload = b[ihl:]
		if total := int(binary.BigEndian.Uint16(b[2:4])); total >= ihl && total < len(b) {
			payload = b[ihl:total] // Ethernet padding is not payload
		}
	case 6:
		if len(b) < 40 {
			f.Truncated = true
			return
		}
		h.Src, h.Dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		h.Proto, h.TTL = b[6], b[7]
		payload = b[40:]
		if plen := int(binary.BigEndian.Uint16(b[4:6])); plen < len(payload) {
			payload = payload[:plen]
		}
	default:
		f.Truncated = true
		return
	}
	f.IP = append(f.IP, h)
	if h.Fragment {
		return
	}
	if h.Proto == protoIPIP || h.Proto == protoIPv6 {
		f.decodeIP(payload)
		return
	}
	f.Truncated = !f.IP[len(f.IP)-1].decodeTransport(payload)
}

func (h *IPHeader) decodeTransport(b []byte) bool {
	switch h.Proto {
	case protoTCP:
		if len(b) < 20 {
			return false
		}
		h.SrcPort, h.DstPort = binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
		h.Seq, h.Ack = binary.BigEndian.Uint32(b[4:8]), binary.BigEndian.Uint32(b[8:12])
		h.TCPFlags = b[13]
		h.Payload = max(len(b)-int(b[12]>>4)*4, 0)
	case protoUDP:
		if len(b) < 8 {
			return false
		}
		h.SrcPort, h.DstPort = binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
		h.Payload = len(b) - 8
	case protoICMP, protoICMPv6:
		if len(b) < 8 {
			return false
		}
		h.ICMPType, h.ICMPCode = b[0], b[1]
		h.ICMPRest = binary.BigEndian.Uint32(b[4:8])
		h.Payload = len(b) - 8
	default:
		return true
	}
	h.Transport = true
	return true
}

// Format prints a packet on one line: time, interface, direction, then
// the headers, e.g.
//
//	15:04:05.123456 router:eth1 in  10.111.221.11 > 10.111.222.11 IPIP [10.111.220.11.40612 > 192.168.10.1.50007 TCP S], length 74
//
// MAC addresses only when verbose.
func Format(p Packet, ifc Interface, verbose bool) string {
	return fmt.Sprintf("%s %s %-3s %s, length %d", p.Time.Format("15:04:05.000000"), ifc.Name, p.Dir,
		Decode(p.Data, ifc.LinkType).String(verbose), p.Length)
}

// String describes the frame's headers; MACs only when verbose.
func (f Frame) String(verbose bool) string {
	var b strings.Builder
	if verbose && f.SrcMAC != nil {
		fmt.Fprintf(&b, "%s > %s, ", f.SrcMAC, f.DstMAC)
	}
	switch {
	case f.ARP != nil:
		b.WriteString(f.ARP.String())
	case len(f.IP) > 0:
		writeIP(&b, f.IP)
	case f.SrcMAC != nil && f.EtherType != 0x0800 && f.EtherType != 0x86dd && f.EtherType != 0x0806:
		fmt.Fprintf(&b, "ethertype 0x%04x", f.EtherType)
	}
	if f.Truncated {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("[truncated]")
	}
	return b.String()
}

// writeIP prints a tunnel as its outer addresses, the tunnel's name and
// the inner packet in brackets.
func writeIP(b *strings.Builder, hs []IPHeader) {
	h := hs[0]
	if len(hs) > 1 {
		fmt.Fprintf(b, "%s > %s %s [", h.Src, h.Dst, tunnelName(h, hs[1]))
		writeIP(b, hs[1:])
		b.WriteByte(']')
		return
	}
	hostPort := func(a netip.Addr, port uint16) string { return fmt.Sprintf("%s.%d", a, port) }
	switch {
	case h.Fragment:
		fmt.Fprintf(b, "%s > %s %s fragment", h.Src, h.Dst, protoName(h.Proto))
	case !h.Transport:
		fmt.Fprintf(b, "%s > %s %s", h.Src, h.Dst, protoName(h.Proto))
	case h.Proto == protoTCP:
		fmt.Fprintf(b, "%s > %s TCP %s", hostPort(h.Src, h.SrcPort), hostPort(h.Dst, h.DstPort), TCPFlags(h.TCPFlags))
		if h.Payload > 0 {
			fmt.Fprintf(b, " len %d", h.Payload)
		}
	case h.Proto == protoUDP:
		fmt.Fprintf(b, "%s > %s UDP len %d", hostPort(h.Src, h.SrcPort), hostPort(h.Dst, h.DstPort), h.Payload)
	case h.Proto == protoICMP:
		fmt.Fprintf(b, "%s > %s ICMP %s", h.Src, h.Dst, icmpString(h))
	case h.Proto == protoICMPv6:
		fmt.Fprintf(b, "%s > %s ICMP6 %s", h.Src, h.Dst, icmp6String(h))
	default:
		fmt.Fprintf(b, "%s > %s %s", h.Src, h.Dst, protoName(h.Proto))
	}
}

// tunnelName uses Linux's names for the device that makes such packets.
func tunnelName(outer, inner IPHeader) string {
	switch {
	case outer.Src.Is4() && inner.Src.Is4():
		return "IPIP"
	case outer.Src.Is4():
		return "SIT"
	case inner.Src.Is4():
		return "IPIP6"
	}
	return "IP6IP6"
}

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "TCP"
	case protoUDP:
		return "UDP"
	case protoICMP:
		return "ICMP"
	case protoICMPv6:
		return "ICMP6"
	}
	return fmt.Sprintf("proto %d", p)
}

// TCPFlags spells flags like tcpdump: S, F, R, P, U, E, W, and "." for
// ACK, so a SYN-ACK is "S." and a bare ACK ".".
func TCPFlags(flags uint8) string {
	const letters = "FSRP.UEW" // bit 0 (FIN) first; bit 4 is ACK
	var b strings.Builder
	for i := range 8 {
		if flags&(1<<i) != 0 {
			b.WriteByte(letters[i])
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

func icmpString(h IPHeader) string {
	idSeq := fmt.Sprintf("id %d seq %d", h.ICMPRest>>16, h.ICMPRest&0xffff)
	switch h.ICMPType {
	case 0:
		return "echo reply " + idSeq
	case 8:
		return "echo request " + idSeq
	case 3:
		if h.ICMPCode == 4 {
			return fmt.Sprintf("unreachable, fragmentation needed, mtu %d", h.ICMPRest&0xffff)
		}
		return fmt.Sprintf("unreachable code %d", h.ICMPCode)
	case 11:
		return "time exceeded"
	}
	return fmt.Sprintf("type %d code %d", h.ICMPType, h.ICMPCode)
}

func icmp6String(h IPHeader) string {
	switch h.ICMPType {
	case 1:
		return fmt.Sprintf("unreachable code %d", h.ICMPCode)
	case 2:
		return fmt.Sprintf("packet too big, mtu %d", h.ICMPRest)
	case 3:
		return "time exceeded"
	case 128:
		return fmt.Sprintf("echo request id %d seq %d", h.ICMPRest>>16, h.ICMPRest&0xffff)
	case 129:
		return fmt.Sprintf("echo reply id %d seq %d", h.ICMPRest>>16, h.ICMPRest&0xffff)
	case 133:
		return "router solicitation"
	case 134:
		return "router advertisement"
	case 135:
		return "neighbor solicitation"
	case 136:
		return "neighbor advertisement"
	}
	return fmt.Sprintf("type %d code %d", h.ICMPType, h.ICMPCode)
}

func (a *ARP) String() string {
	switch a.Op {
	case 1:
		return fmt.Sprintf("ARP who-has %s tell %s", a.TargetIP, a.SenderIP)
	case 2:
		return fmt.Sprintf("ARP reply %s is-at %s", a.SenderIP, a.SenderMAC)
	}
	return fmt.Sprintf("ARP op %d", a.Op)
}
