package bpf

import (
	"errors"
	"fmt"
	"net/netip"
)

// Proto is the L4 protocol of a VIP, as IANA numbers it.
type Proto uint8

const (
	ProtoTCP Proto = 6
	ProtoUDP Proto = 17
)

func (p Proto) String() string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

const (
	// MaxVIPs is how many VIPs one balancer holds (MAX_VIPS in the C
	// code, sized by the memory of the Maglev rings).
	MaxVIPs = 64
	// MaxRealsPerVIP is the largest real set of a VIP: Maglev spreads
	// evenly while the ring has ~100 entries per real or more.
	MaxRealsPerVIP = 256
	// MaxReals is how many (VIP, real) pairs all VIPs together may have:
	// MAX_REALS slots minus the reserved NO_REAL_SLOT.
	MaxReals = realSlots - 1
	// MinPathMTU is the smallest path MTU Configure accepts: the MTU the
	// balancer advertises in ICMP (path MTU minus the outer header) must
	// be at least IPv4's minimum of 68 (RFC 791).
	MinPathMTU = 68 + ipv4HeaderSize
	// MinPathMTU6 is the smallest path MTU of an IPv6 real, and of the
	// uplink once it has an IPv6 source: every IPv6 link carries 1280
	// bytes (RFC 8200). An IPv6 VIP's packets of 1241 to 1280 bytes do not
	// fit such a path once encapsulated, and the client may not be told
	// less than 1280: paths of 1320 or more carry every IPv6 client.
	MinPathMTU6 = 1280
	// MaxPathMTU is the largest IPv4 packet.
	MaxPathMTU = 0xffff
)

const (
	// realSlots is MAX_REALS.
	realSlots = 4096
	// noRealSlot is NO_REAL_SLOT: never assigned, so a zero ring entry
	// names no real.
	noRealSlot = 0
	// ipv4HeaderSize is the outer header IPIP adds.
	ipv4HeaderSize = 20
)

// HashMode is how a VIP picks the real of a flow it has not seen yet.
// Whatever the mode, the connection table keeps each established
// connection (5-tuple) on the real it started on.
type HashMode uint8

const (
	// HashFiveTuple hashes source and destination address and port.
	HashFiveTuple HashMode = iota
	// HashNoSrcPort ignores the source port: every connection of a
	// client goes to the same real while the VIP's reals stay.
	HashNoSrcPort
	// HashDstPortOnly hashes only the destination address and port:
	// every client of a port goes to the same real.
	HashDstPortOnly
)

var hashModeNames = [...]string{
	HashFiveTuple:   "five-tuple",
	HashNoSrcPort:   "no-src-port",
	HashDstPortOnly: "dst-port-only",
}

func (h HashMode) String() string {
	if int(h) < len(hashModeNames) {
		return hashModeNames[h]
	}
	return fmt.Sprintf("hash(%d)", uint8(h))
}

// ParseHashMode reads a mode as String writes it; "" is HashFiveTuple.
func ParseHashMode(s string) (HashMode, error) {
	if s == "" {
		return HashFiveTuple, nil
	}
	for h, name := range hashModeNames {
		if s == name {
			return HashMode(h), nil
		}
	}
	return 0, fmt.Errorf("hash %q: want one of %v", s, hashModeNames)
}

// AnyPort as a VIP's port serves every port of the VIP's address and
// protocol that no VIP names exactly.
const AnyPort = 0

// ErrUnknownVIP is returned for a VIP the balancer does not have.
var ErrUnknownVIP = errors.New("no such vip")

// VIP is a load-balanced service: IPv4 or IPv6 address, port (AnyPort for
// all of them) and protocol, which identify it, and how it hashes new
// flows. Every configured VIP address also answers ping (ICMP or ICMPv6
// echo). An IPv6 VIP needs IPv6 reals; an IPv4 VIP may have reals of
// either family.
type VIP struct {
	Addr  netip.Addr
	Port  uint16
	Proto Proto
	// Hash is a setting of the VIP, not part of its identity: SetVIP with
	// another Hash changes the VIP in place, and DeleteVIP ignores it.
	Hash HashMode
}

func (v VIP) String() string {
	port := fmt.Sprint(v.Port)
	if v.Port == AnyPort {
		port = "*"
	}
	addr := v.Addr.String()
	if v.Addr.Is6() {
		addr = "[" + addr + "]" // as netip.AddrPort writes it
	}
	s := fmt.Sprintf("%s:%s/%s", addr, port, v.Proto)
	if v.Hash != HashFiveTuple {
		s += " hash " + v.Hash.String()
	}
	return s
}

func (v VIP) validate() error {
	if err := validateAddr("vip", v.Addr); err != nil {
		return err
	}
	if v.Proto != ProtoTCP && v.Proto != ProtoUDP {
		return fmt.Errorf("vip %s: protocol must be tcp or udp", v)
	}
	if int(v.Hash) >= len(hashModeNames) {
		return fmt.Errorf("vip %s: unknown hash mode", v)
	}
	return nil
}

// Real is a backend of a VIP, reached over its address's family: IPIP to
// an IPv4 real, IPv6-in-IPv6 or 4in6 to an IPv6 one. New flows are spread
// over a VIP's reals in proportion to Weight; weight 0 drains the real: it
// gets no new flows but keeps the ones it has.
type Real struct {
	Addr   netip.Addr
	Weight uint32
	// MTU is the largest packet the path from the balancer to this real
	// carries: the smallest link MTU on the way (at least MinPathMTU6 for
	// an IPv6 real). A VIP packet whose encapsulation exceeds it is
	// answered with ICMP "fragmentation needed" (IPv4, DF set) or ICMPv6
	// Packet Too Big, or dropped. 0 means the path MTU given to
	// Configure. A router reporting a smaller MTU for an encapsulated
	// packet lowers it further, until SetVIP gives the real another MTU.
	MTU int
}

func (r Real) String() string {
	if r.MTU != 0 {
		return fmt.Sprintf("%s*%d mtu %d", r.Addr, r.Weight, r.MTU)
	}
	return fmt.Sprintf("%s*%d", r.Addr, r.Weight)
}

func (r Real) validate() error {
	if err := validateHost("real", r.Addr); err != nil {
		return err
	}
	least := MinPathMTU
	if r.Addr.Is6() {
		least = MinPathMTU6
	}
	if r.MTU != 0 && (r.MTU < least || r.MTU > MaxPathMTU) {
		return fmt.Errorf("real %s: path MTU %d: want 0 or %d to %d", r.Addr, r.MTU, least, MaxPathMTU)
	}
	return nil
}

// validateAddr rejects what the maps cannot tell apart: an IPv4-mapped
// IPv6 address is their form of an IPv4 address, and a zone is no part of
// an address on the wire.
func validateAddr(what string, a netip.Addr) error {
	switch {
	case !a.IsValid():
		return fmt.Errorf("%s: no address", what)
	case a.Is4In6():
		return fmt.Errorf("%s %s: IPv4-mapped; write the IPv4 address %s", what, a, a.Unmap())
	case a.Zone() != "":
		return fmt.Errorf("%s %s: an address with a zone", what, a)
	}
	return nil
}

// validateHost rejects what cannot be a host address on the wire.
func validateHost(what string, a netip.Addr) error {
	if err := validateAddr(what, a); err != nil {
		return err
	}
	if a.IsUnspecified() {
		return fmt.Errorf("%s must not be %s", what, a)
	}
	return nil
}

// Counters are packets and bytes (whole frames, as received).
type Counters struct {
	Packets uint64
	Bytes   uint64
}

// Stats are the balancer's counters, summed over all CPUs. Each packet is
// counted in exactly one of Passed, Encapsulated, Dropped, TooBig and
// EchoReplies.
type Stats struct {
	// Passed counts packets handed to the kernel: not for a VIP, not
	// parseable, or the balancer is not configured.
	Passed uint64
	// Encapsulated counts packets sent back out encapsulated (XDP_TX):
	// IPIP, ip6ip6 or 4in6.
	Encapsulated uint64
	// Dropped counts VIP packets without a real to go to (a new flow of a
	// VIP whose reals are all drained), whose frame could not be
	// reshaped, and those DroppedFragments and DroppedTooBig count.
	Dropped uint64
	// TooBig counts packets answered with ICMP "fragmentation needed" or
	// ICMPv6 Packet Too Big.
	TooBig uint64
	// EchoReplies counts ICMP and ICMPv6 echo requests to a VIP address,
	// answered by the balancer.
	EchoReplies uint64
	// ICMPForwarded counts the Encapsulated packets that are ICMP
	// destination-unreachable errors (frag-needed above all), or ICMPv6
	// destination-unreachable and Packet Too Big, about a VIP flow, sent to
	// the flow's real.
	ICMPForwarded uint64
	// IPOptions counts VIP packets with IPv4 options or IPv6 extension
	// headers (hop-by-hop, destination options, routing with no segments
	// left, atomic fragment): they are balanced like any other, the
	// headers left for the real's kernel.
	IPOptions uint64
	// DroppedFragments counts IPv4 and IPv6 fragments to a VIP address.
	DroppedFragments uint64
	// DroppedTooBig counts VIP packets too big for their real's path that
	// may not be answered with "fragmentation needed": IPv4 without DF, or
	// ICMP errors themselves.
	DroppedTooBig uint64
	// PathMTULowered counts Passed ICMP "fragmentation needed" and ICMPv6
	// Packet Too Big messages to the balancer's own address about an
	// encapsulated packet: each lowered its real's path MTU, confirmed it,
	// or (once the learned one expired) set it again.
	PathMTULowered uint64
	// IPv6Malformed counts Passed IPv6 packets whose headers do not parse:
	// truncated, a payload length past the frame, an extension header past
	// the payload, more than 4 extension headers, or an IPv4-mapped
	// destination.
	IPv6Malformed uint64
	// LRUHits counts VIP packets sent to the real the connection table
	// remembered for their flow in the copy of the CPU they ran on;
	// LRURemoteHits those found only in another CPU's copy (the flow's
	// packets moved CPU, as on veth, where no RSS holds a flow to one
	// CPU), which the program then copies to its own CPU; LRUMisses those
	// whose real came from the Maglev ring (new flows, TCP SYNs, and flows
	// whose real was removed). Each VIP packet a real was looked up for is
	// in exactly one of the three.
	LRUHits       uint64
	LRURemoteHits uint64
	LRUMisses     uint64
	// VIPs holds the traffic of every configured VIP.
	VIPs map[VIP]Counters
	// Reals holds the traffic sent to each real, over all its VIPs, since
	// it joined them: counters of a VIP's real start at zero when the real
	// is added to the VIP and are forgotten when it is removed.
	Reals map[netip.Addr]Counters
}

// DecapStats are the decapsulator's counters, summed over all CPUs.
type DecapStats struct {
	// Decapsulated counts IPIP, ip6ip6 and 4in6 packets whose outer header
	// was removed.
	Decapsulated uint64
}
