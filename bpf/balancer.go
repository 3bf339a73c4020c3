//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
)

// The C list and the Go limit must agree; this fails to compile otherwise.
var _ [MaxRealsPerVIP]uint32 = balancerRealList{}.Addrs

// configKey is CONFIG_KEY, the only entry of the config array.
const configKey uint32 = 0

// Balancer is the loaded xdp_balancer program and its maps.
type Balancer struct {
	objs balancerObjects
	// mu serialises SetVIP, which allocates vip numbers by reading the
	// vips map before writing it.
	mu sync.Mutex
}

// LoadBalancer loads xdp_balancer into the kernel. It forwards nothing
// until Configure has set the outer source and next hop.
func LoadBalancer() (*Balancer, error) {
	b := &Balancer{}
	if err := loadObjects("balancer", loadBalancerObjects, &b.objs); err != nil {
		return nil, err
	}
	return b, nil
}

// Configure sets the outer source address of encapsulated packets and the
// MAC address they are sent to (the router in front of the balancer).
func (b *Balancer) Configure(src netip.Addr, nextHop net.HardwareAddr) error {
	if err := validateHost("source address", src); err != nil {
		return err
	}
	cfg := balancerLbConfig{SrcAddr: be32(src)}
	if len(nextHop) != len(cfg.NextHopMac) {
		return fmt.Errorf("next hop %s: not an Ethernet MAC address", nextHop)
	}
	copy(cfg.NextHopMac[:], nextHop)
	if err := b.objs.Config.Put(configKey, &cfg); err != nil {
		return fmt.Errorf("configure balancer: %w", err)
	}
	return nil
}

// SetVIP adds v, or replaces its reals if it exists. Each flow of v goes to
// one of reals, chosen by a hash of its 5-tuple.
func (b *Balancer) SetVIP(v VIP, reals []netip.Addr) error {
	if err := v.validate(); err != nil {
		return err
	}
	if len(reals) == 0 || len(reals) > MaxRealsPerVIP {
		return fmt.Errorf("vip %s: %d reals, want 1 to %d", v, len(reals), MaxRealsPerVIP)
	}
	list := balancerRealList{Count: uint32(len(reals))}
	for _, r := range reals {
		if err := validateHost("real", r); err != nil {
			return fmt.Errorf("vip %s: %w", v, err)
		}
	}
	// Repeating the list into every slot means a packet racing this update
	// reads some real of the old or new list, never an empty slot.
	for i := range list.Addrs {
		list.Addrs[i] = be32(reals[i%len(reals)])
	}

	b.mu.Lock()
	defer b.mu.Unlock()

	key := vipKey(v)
	var meta balancerVipMeta
	err := b.objs.Vips.Lookup(&key, &meta)
	exists := err == nil
	if !exists {
		if !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("vip %s: look up: %w", v, err)
		}
		if meta.VipNum, err = b.freeVIPNum(); err != nil {
			return fmt.Errorf("vip %s: %w", v, err)
		}
	}

	// Reals first: the program must never find a VIP without them.
	if err := b.objs.VipReals.Put(meta.VipNum, &list); err != nil {
		return fmt.Errorf("vip %s: set reals: %w", v, err)
	}
	if exists {
		return nil
	}
	if err := b.objs.Vips.Update(&key, &meta, ebpf.UpdateNoExist); err != nil {
		return fmt.Errorf("vip %s: add: %w", v, err)
	}
	return nil
}

// freeVIPNum returns the lowest vip number no VIP uses. The map, not Go
// memory, is the record, so the answer holds for maps set up by another
// process too.
func (b *Balancer) freeVIPNum() (uint32, error) {
	var used [MaxVIPs]bool
	var key balancerVipKey
	var meta balancerVipMeta
	iter := b.objs.Vips.Iterate()
	for iter.Next(&key, &meta) {
		if meta.VipNum < MaxVIPs {
			used[meta.VipNum] = true
		}
	}
	if err := iter.Err(); err != nil {
		return 0, fmt.Errorf("list vips: %w", err)
	}
	for num, taken := range used {
		if !taken {
			return uint32(num), nil
		}
	}
	return 0, fmt.Errorf("all %d vips in use", MaxVIPs)
}

// Program returns xdp_balancer, for attaching to the balancer's interface.
func (b *Balancer) Program() *ebpf.Program {
	return b.objs.XdpBalancer
}

// Stats reads the global and per-VIP counters.
func (b *Balancer) Stats() (Stats, error) {
	var s Stats
	globals := []struct {
		stat balancerGlobalStat
		dst  *uint64
	}{
		{balancerGlobalStatSTAT_PASSED, &s.Passed},
		{balancerGlobalStatSTAT_ENCAPSULATED, &s.Encapsulated},
		{balancerGlobalStatSTAT_DROPPED, &s.Dropped},
	}
	for _, g := range globals {
		n, err := sumPerCPU(b.objs.GlobalStats, g.stat)
		if err != nil {
			return Stats{}, fmt.Errorf("read balancer stats: %w", err)
		}
		*g.dst = n
	}

	s.VIPs = make(map[VIP]Counters)
	var key balancerVipKey
	var meta balancerVipMeta
	iter := b.objs.Vips.Iterate()
	for iter.Next(&key, &meta) {
		var perCPU []balancerLbCounters
		if err := b.objs.VipStats.Lookup(meta.VipNum, &perCPU); err != nil {
			return Stats{}, fmt.Errorf("read stats of vip %s: %w", vipFromKey(key), err)
		}
		var c Counters
		for _, cpu := range perCPU {
			c.Packets += cpu.Packets
			c.Bytes += cpu.Bytes
		}
		s.VIPs[vipFromKey(key)] = c
	}
	if err := iter.Err(); err != nil {
		return Stats{}, fmt.Errorf("list vips: %w", err)
	}
	return s, nil
}

// Close releases the program and maps. An attached program stays attached.
func (b *Balancer) Close() error {
	return b.objs.Close()
}

func vipKey(v VIP) balancerVipKey {
	return balancerVipKey{Addr: be32(v.Addr), Port: be16(v.Port), Proto: uint8(v.Proto)}
}

func vipFromKey(k balancerVipKey) VIP {
	return VIP{Addr: addrFromBE32(k.Addr), Port: portFromBE16(k.Port), Proto: Proto(k.Proto)}
}
