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
	// MaxVIPs is how many VIPs one balancer holds (MAX_VIPS in the C code).
	MaxVIPs = 512
	// MaxRealsPerVIP is the longest real list of a VIP (MAX_REALS_PER_VIP).
	MaxRealsPerVIP = 16
)

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

// Stats are the balancer's counters, summed over all CPUs.
type Stats struct {
	// Passed counts packets handed to the kernel: not for a VIP, not
	// parseable, or the balancer is not configured.
	Passed uint64
	// Encapsulated counts packets sent back out as IPIP (XDP_TX).
	Encapsulated uint64
	// Dropped counts VIP packets whose frame could not be grown for the
	// outer header.
	Dropped uint64
	// VIPs holds the traffic of every configured VIP.
	VIPs map[VIP]Counters
}

// DecapStats are the decapsulator's counters, summed over all CPUs.
type DecapStats struct {
	// Decapsulated counts IPIP packets whose outer header was removed.
	Decapsulated uint64
}
