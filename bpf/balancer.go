//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf/maglev"
)

// The C ring and the Go Maglev table must agree; this fails to compile
// otherwise.
var _ [maglev.RingSize]uint32 = balancerChRing{}.Slots

// configKey is CONFIG_KEY, the only entry of the config array.
const configKey uint32 = 0

// Balancer is the xdp_balancer program and its maps, loaded by this
// process (LoadBalancer) or found in the kernel (OpenBalancer). The maps
// are the only record: every method works the same on either, and two
// Balancers for one program see the same VIPs.
type Balancer struct {
	objs balancerObjects
	// mu serialises the methods that read maps to decide what to write
	// (vip numbers, real slots). Balancers in different processes do not
	// share it: one writer per program at a time.
	mu sync.Mutex
}

// Options tune LoadBalancer.
type Options struct {
	// LRUSize is how many flows the connection table remembers; zero
	// means 65536 (DEFAULT_LRU_SIZE), enough for a lab. The table is
	// preallocated: each flow costs about 100 bytes plus 8 per CPU.
	LRUSize uint32
}

// LoadBalancer loads xdp_balancer into the kernel. It forwards nothing
// until Configure has set the outer source and next hop.
func LoadBalancer(opts Options) (*Balancer, error) {
	spec, err := loadBalancer()
	if err != nil {
		return nil, err
	}
	if opts.LRUSize != 0 {
		spec.Maps[balancerMapLruFlows].MaxEntries = opts.LRUSize
	}
	b := &Balancer{}
	if err := loadObjects("balancer", spec, &b.objs); err != nil {
		return nil, err
	}
	return b, nil
}

// ErrOtherBuild is OpenBalancer's answer for an xdp_balancer whose maps
// are not this build's: another version of dsrlab loaded it, and this one
// would misread them.
var ErrOtherBuild = errors.New("its maps differ from this build's: another version of dsrlab loaded it")

// OpenBalancerByID is OpenBalancer for the program with the given ID, as
// an interface's XDP attachment reports it.
func OpenBalancerByID(id ebpf.ProgramID) (*Balancer, error) {
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return nil, fmt.Errorf("open balancer program %d: %w", id, err)
	}
	defer prog.Close()
	return OpenBalancer(prog)
}

// OpenBalancer finds the maps of a loaded xdp_balancer through the
// program's own map references, so a process other than the one that
// loaded it (which may have exited) can manage it without pinning
// anything. prog stays the caller's; the Balancer holds its own handles.
func OpenBalancer(prog *ebpf.Program) (*Balancer, error) {
	info, err := prog.Info()
	if err != nil {
		return nil, fmt.Errorf("open balancer: %w", err)
	}
	if info.Name != balancerProgXdpBalancer {
		return nil, fmt.Errorf("open balancer: program %q is not %s", info.Name, balancerProgXdpBalancer)
	}
	ids, ok := info.MapIDs()
	if !ok {
		return nil, errors.New("open balancer: kernel does not report the program's maps")
	}
	spec, err := loadBalancer()
	if err != nil {
		return nil, err
	}

	found := make(map[string]*ebpf.Map, len(ids))
	defer func() {
		for _, m := range found {
			m.Close()
		}
	}()
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			return nil, fmt.Errorf("open balancer: map %d: %w", id, err)
		}
		mi, err := m.Info()
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("open balancer: map %d: %w", id, err)
		}
		found[mi.Name] = m
	}
	for name := range spec.Maps {
		if found[name] == nil {
			return nil, fmt.Errorf("open balancer: program has no map %q: %w", name, ErrOtherBuild)
		}
	}
	// The table's size was chosen at load time; everything else must be
	// what this package's object declares, or the Go mirrors would
	// misread the maps.
	spec.Maps[balancerMapLruFlows].MaxEntries = found[balancerMapLruFlows].MaxEntries()

	b := &Balancer{}
	// Replacements are cloned and checked against the spec; nothing is
	// created.
	if err := spec.LoadAndAssign(&b.objs.balancerMaps, &ebpf.CollectionOptions{MapReplacements: found}); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("open balancer: %w (%v)", ErrOtherBuild, err)
		}
		return nil, fmt.Errorf("open balancer: %w", err)
	}
	if b.objs.XdpBalancer, err = prog.Clone(); err != nil {
		b.objs.Close()
		return nil, fmt.Errorf("open balancer: %w", err)
	}
	return b, nil
}

// Configure sets the outer source address of encapsulated packets towards
// reals of src's family (IPv4: IPIP; IPv6: ip6ip6 and 4in6), the MAC
// address they are sent to (the router in front of the balancer) and the
// path MTU: the largest packet the path to the reals carries, for reals
// whose Real.MTU is 0. A dual-stack balancer calls it once per family,
// with the same next hop and path MTU; the source of the other family,
// set by an earlier call, stays. Packets for reals of a family with no
// source are passed to the kernel. A VIP packet that would exceed its
// real's path MTU once encapsulated is answered with ICMP "fragmentation
// needed" (IPv4 with DF set; dropped without) or ICMPv6 Packet Too Big,
// advertising that MTU minus the outer header. It also records the host's
// possible CPUs, whose copies of the connection table the program
// searches.
func (b *Balancer) Configure(src netip.Addr, nextHop net.HardwareAddr, pathMTU int) error {
	if err := validateHost("source address", src); err != nil {
		return err
	}
	if pathMTU < MinPathMTU || pathMTU > MaxPathMTU {
		return fmt.Errorf("path MTU %d: want %d to %d", pathMTU, MinPathMTU, MaxPathMTU)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var cfg balancerLbConfig
	if err := b.objs.Config.Lookup(configKey, &cfg); err != nil {
		return fmt.Errorf("configure balancer: %w", err)
	}
	if src.Is4() {
		cfg.SrcAddr = be32(src)
	} else {
		cfg.SrcAddr6 = addrWords(src)
	}
	if cfg.SrcAddr6 != ([4]uint32{}) && pathMTU < MinPathMTU6 {
		return fmt.Errorf("path MTU %d: an IPv6 uplink carries at least %d", pathMTU, MinPathMTU6)
	}
	// The program searches this many per-CPU copies of the connection
	// table for a flow whose packets moved CPU (up to MAX_CPUS).
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("configure balancer: %w", err)
	}
	cfg.PathMtu = uint16(pathMTU)
	cfg.PossibleCpus = uint32(cpus)
	if len(nextHop) != len(cfg.NextHopMac) {
		return fmt.Errorf("next hop %s: not an Ethernet MAC address", nextHop)
	}
	copy(cfg.NextHopMac[:], nextHop)
	if err := b.objs.Config.Put(configKey, &cfg); err != nil {
		return fmt.Errorf("configure balancer: %w", err)
	}
	return nil
}

// Program returns xdp_balancer, for attaching to the balancer's interface.
func (b *Balancer) Program() *ebpf.Program {
	return b.objs.XdpBalancer
}

// Stats reads the global, per-VIP and per-real counters.
func (b *Balancer) Stats() (Stats, error) {
	var s Stats
	globals := []struct {
		stat balancerGlobalStat
		dst  *uint64
	}{
		{balancerGlobalStatSTAT_PASSED, &s.Passed},
		{balancerGlobalStatSTAT_ENCAPSULATED, &s.Encapsulated},
		{balancerGlobalStatSTAT_DROPPED, &s.Dropped},
		{balancerGlobalStatSTAT_TOO_BIG, &s.TooBig},
		{balancerGlobalStatSTAT_LRU_HIT, &s.LRUHits},
		{balancerGlobalStatSTAT_LRU_MISS, &s.LRUMisses},
		{balancerGlobalStatSTAT_LRU_REMOTE_HIT, &s.LRURemoteHits},
		{balancerGlobalStatSTAT_ECHO_REPLIED, &s.EchoReplies},
		{balancerGlobalStatSTAT_ICMP_FORWARDED, &s.ICMPForwarded},
		{balancerGlobalStatSTAT_IP_OPTIONS, &s.IPOptions},
		{balancerGlobalStatSTAT_DROP_FRAGMENT, &s.DroppedFragments},
		{balancerGlobalStatSTAT_DROP_TOO_BIG, &s.DroppedTooBig},
		{balancerGlobalStatSTAT_PATH_MTU_LOWERED, &s.PathMTULowered},
		{balancerGlobalStatSTAT_IPV6MALFORMED, &s.IPv6Malformed},
	}
	for _, g := range globals {
		n, err := sumPerCPU(b.objs.GlobalStats, g.stat)
		if err != nil {
			return Stats{}, fmt.Errorf("read balancer stats: %w", err)
		}
		*g.dst = n
	}

	vips, err := b.vipNums()
	if err != nil {
		return Stats{}, err
	}
	s.VIPs = make(map[VIP]Counters, len(vips))
	for v, num := range vips {
		if s.VIPs[v], err = sumCounters(b.objs.VipStats, num); err != nil {
			return Stats{}, fmt.Errorf("read stats of vip %s: %w", v, err)
		}
	}

	table, err := b.readSlots()
	if err != nil {
		return Stats{}, err
	}
	s.Reals = make(map[netip.Addr]Counters)
	for slot, def := range table {
		if def.free() {
			continue
		}
		addr := addrFromWords(def.Addr)
		c, err := sumCounters(b.objs.RealStats, uint32(slot))
		if err != nil {
			return Stats{}, fmt.Errorf("read stats of real %s: %w", addr, err)
		}
		sum := s.Reals[addr]
		sum.Packets += c.Packets
		sum.Bytes += c.Bytes
		s.Reals[addr] = sum
	}
	return s, nil
}

// sumCounters adds up the per-CPU counters at index of a counters array.
func sumCounters(m *ebpf.Map, index uint32) (Counters, error) {
	var perCPU []balancerLbCounters
	if err := m.Lookup(index, &perCPU); err != nil {
		return Counters{}, err
	}
	var c Counters
	for _, cpu := range perCPU {
		c.Packets += cpu.Packets
		c.Bytes += cpu.Bytes
	}
	return c, nil
}

// resetCounters zeroes the per-CPU counters at index, for a VIP number or
// real slot given to a new owner.
func resetCounters(m *ebpf.Map, index uint32) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	return m.Put(index, make([]balancerLbCounters, cpus))
}

// Close releases this process's handles. An attached program, and its
// maps, stay in the kernel.
func (b *Balancer) Close() error {
	return b.objs.Close()
}

func vipKey(v VIP) balancerVipKey {
	return balancerVipKey{Addr: addrWords(v.Addr), Port: be16(v.Port), Proto: uint8(v.Proto)}
}

func vipFromMap(k balancerVipKey, meta balancerVipMeta) VIP {
	return VIP{Addr: addrFromWords(k.Addr), Port: portFromBE16(k.Port), Proto: Proto(k.Proto), Hash: HashMode(meta.Hash)}
}

// free tells an unused slot: its address is all zero.
func (def balancerRealDef) free() bool {
	return def.Addr == [4]uint32{}
}
