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

// ErrUnknownVIP is returned for a VIP the balancer does not have.
var ErrUnknownVIP = errors.New("no such vip")

// VIP is a load-balanced service: IPv4 address, port and protocol.
type VIP struct {
	Addr  netip.Addr
	Port  uint16
	Proto Proto
}

func (v VIP) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(v.Addr, v.Port), v.Proto)
}

func (v VIP) validate() error {
	if !v.Addr.Is4() {
		return fmt.Errorf("vip %s: address must be IPv4", v)
	}
	if v.Proto != ProtoTCP && v.Proto != ProtoUDP {
		return fmt.Errorf("vip %s: protocol must be tcp or udp", v)
	}
	return nil
}

// Real is a backend of a VIP. New flows are spread over a VIP's reals in
// proportion to Weight; weight 0 drains the real: it gets no new flows but
// keeps the ones it has.
type Real struct {
	Addr   netip.Addr
	Weight uint32
}

func (r Real) String() string {
	return fmt.Sprintf("%s*%d", r.Addr, r.Weight)
}

// validateHost rejects what cannot be an IPv4 host address on the wire.
func validateHost(what string, a netip.Addr) error {
	if !a.Is4() {
		return fmt.Errorf("%s %s: must be IPv4", what, a)
	}
	if a.IsUnspecified() {
		return errors.New(what + " must not be 0.0.0.0")
	}
	return nil
}

// Counters are packets and bytes (whole frames, as received).
type Counters struct {
	Packets uint64
	Bytes   uint64
}

// Stats are the balancer's counters, summed over all CPUs. Each packet is
// counted in exactly one of Passed, Encapsulated, Dropped and TooBig.
type Stats struct {
	// Passed counts packets handed to the kernel: not for a VIP, not
	// parseable, the balancer is not configured, or too big for the path
	// without DF set.
	Passed uint64
	// Encapsulated counts packets sent back out as IPIP (XDP_TX).
	Encapsulated uint64
	// Dropped counts VIP packets without a real to go to (a new flow of a
	// VIP whose reals are all drained) or whose frame could not be
	// reshaped.
	Dropped uint64
	// TooBig counts packets answered with ICMP "fragmentation needed".
	TooBig uint64
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
	// Decapsulated counts IPIP packets whose outer header was removed.
	Decapsulated uint64
}
