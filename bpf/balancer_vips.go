//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf/maglev"
)

// How VIPs and reals live in the maps, none of it in Go memory:
//
//   - vips maps a VIP to its vip_num, which indexes its Maglev ring
//     (ch_rings) and its counters (vip_stats), and its hash mode.
//   - vip_addrs holds every VIP address with its number of VIPs: the
//     program answers pings and drops fragments by address alone.
//     vip_addr_filter holds the same addresses as a bit each, which
//     passes packets for other addresses before any hash lookup.
//   - reals holds one slot per (VIP, real) pair: address, generation,
//     owning vip_num and weight. A ring entry and an LRU entry name a slot.
//   - A real that stays in a VIP keeps its slot across SetVIP calls, so
//     flows the LRU pinned to it stay. Draining (weight 0) only takes it
//     out of the ring.
//   - A real removed from its VIP frees its slot, and freeing bumps the
//     slot's generation. The LRU remembers the generation with the slot,
//     so a flow pinned to the removed real no longer matches, even after
//     the slot is given to another real: the program hashes it again.
//
// Every change writes in an order the program can race safely: slots
// before the ring that names them, the ring before the vips entry that
// leads to it, and slots are freed only once no ring names them.

// SetVIP adds v or changes its reals, in place, without disturbing the
// program: flows of reals that stay (drained ones included) keep their
// real, flows of removed reals move to the remaining ones. Reals are
// identified by address; order does not matter. Weights set each real's
// share of new flows; if all are 0 the VIP is fully drained: established
// flows continue, new flows are dropped (as Katran does) rather than
// handed to a kernel that does not serve the VIP.
func (b *Balancer) SetVIP(v VIP, reals []Real) error {
	if err := v.validate(); err != nil {
		return err
	}
	if len(reals) == 0 || len(reals) > MaxRealsPerVIP {
		return fmt.Errorf("vip %s: %d reals, want 1 to %d (DeleteVIP removes a vip)", v, len(reals), MaxRealsPerVIP)
	}
	for _, r := range reals {
		if err := r.validate(); err != nil {
			return fmt.Errorf("vip %s: %w", v, err)
		}
		// An IPv4 VIP reaches an IPv6 real over 4in6; the other way
		// round would be 6in4, which Katran does not offer either.
		if v.Addr.Is6() && r.Addr.Is4() {
			return fmt.Errorf("vip %s: real %s: an IPv6 vip needs IPv6 reals (6in4 is not supported)", v, r.Addr)
		}
	}
	table, err := maglev.Table(maglevBackends(reals))
	if err != nil {
		return fmt.Errorf("vip %s: %w", v, err)
	}

	b.mu.Lock()
	defer b.mu.Unlock()

	key := vipKey(v)
	var meta balancerVipMeta
	err = b.objs.Vips.Lookup(&key, &meta)
	exists := err == nil
	if !exists {
		if !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("vip %s: look up: %w", v, err)
		}
		if meta.VipNum, err = b.freeVIPNum(); err != nil {
			return fmt.Errorf("vip %s: %w", v, err)
		}
	}

	slots, err := b.readSlots()
	if err != nil {
		return fmt.Errorf("vip %s: %w", v, err)
	}
	plan, err := planSlots(slots, meta.VipNum, reals)
	if err != nil {
		return fmt.Errorf("vip %s: %w", v, err)
	}

	for _, s := range plan.fresh {
		if err := resetCounters(b.objs.RealStats, s); err != nil {
			return fmt.Errorf("vip %s: reset real counters: %w", v, err)
		}
	}
	if err := b.writeSlots(plan.keep, plan.defs); err != nil {
		return fmt.Errorf("vip %s: set reals: %w", v, err)
	}
	var ring balancerChRing
	for entry, owner := range table {
		if owner != maglev.Empty {
			ring.Slots[entry] = plan.keep[owner]
		}
	}
	if err := b.objs.ChRings.Put(meta.VipNum, &ring); err != nil {
		return fmt.Errorf("vip %s: set ring: %w", v, err)
	}
	if !exists {
		if err := resetCounters(b.objs.VipStats, meta.VipNum); err != nil {
			return fmt.Errorf("vip %s: reset counters: %w", v, err)
		}
		meta.Hash = balancerVipHash(v.Hash)
		if err := b.objs.Vips.Update(&key, &meta, ebpf.UpdateNoExist); err != nil {
			return fmt.Errorf("vip %s: add: %w", v, err)
		}
		if err := b.syncVIPAddr(v.Addr); err != nil {
			return fmt.Errorf("vip %s: %w", v, err)
		}
	} else if meta.Hash != balancerVipHash(v.Hash) {
		meta.Hash = balancerVipHash(v.Hash)
		if err := b.objs.Vips.Update(&key, &meta, ebpf.UpdateExist); err != nil {
			return fmt.Errorf("vip %s: set hash: %w", v, err)
		}
	}
	if err := b.freeSlots(slots, plan.gone); err != nil {
		return fmt.Errorf("vip %s: remove reals: %w", v, err)
	}
	return nil
}

// maglevBackends identifies reals by address, so a real keeps its ring
// entries whatever slot it has and whichever process computes the ring.
func maglevBackends(reals []Real) []maglev.Backend {
	backends := make([]maglev.Backend, len(reals))
	for i, r := range reals {
		backends[i] = maglev.Backend{ID: r.Addr.String(), Weight: r.Weight}
	}
	return backends
}

// slotPlan is what SetVIP writes to the reals map: keep[i] and defs[i] are
// the slot and its content for reals[i]; fresh are the slots newly taken
// (their counters start over) and gone the VIP's slots of reals no longer
// listed.
type slotPlan struct {
	keep  []uint32
	defs  []balancerRealDef
	fresh []uint32
	gone  []uint32
}

// planSlots decides every slot before anything is written, so running out
// of slots changes nothing. reals has no duplicates (maglev.Table checked). Slots the vip number still owns with no VIP
// behind it (a SetVIP interrupted before adding the VIP) are reused or
// freed like any others.
func planSlots(slots []balancerRealDef, vipNum uint32, reals []Real) (slotPlan, error) {
	owned := map[netip.Addr]uint32{}
	for s, def := range slots {
		if !def.free() && def.VipNum == vipNum {
			owned[addrFromWords(def.Addr)] = uint32(s)
		}
	}
	nextFree := noRealSlot + 1
	var p slotPlan
	for _, r := range reals {
		s, ok := owned[r.Addr]
		if ok {
			delete(owned, r.Addr)
		} else {
			for nextFree < len(slots) && !slots[nextFree].free() {
				nextFree++
			}
			if nextFree >= len(slots) {
				return slotPlan{}, fmt.Errorf("all %d real slots in use", MaxReals)
			}
			s = uint32(nextFree)
			nextFree++
			p.fresh = append(p.fresh, s)
		}
		p.keep = append(p.keep, s)
		def := balancerRealDef{Addr: addrWords(r.Addr), Gen: slots[s].Gen, VipNum: vipNum, Weight: r.Weight, PathMtu: uint16(r.MTU)}
		// What routers reported about the path stays true while the
		// path is the one it was reported for.
		if ok && slots[s].PathMtu == def.PathMtu {
			def.LearnedMtu, def.LearnedAt = slots[s].LearnedMtu, slots[s].LearnedAt
		}
		p.defs = append(p.defs, def)
	}
	for _, s := range owned {
		p.gone = append(p.gone, s)
	}
	return p, nil
}

// DeleteVIP removes v (its address, port and protocol; v.Hash is not
// looked at). Its flows are no longer balanced: their packets go to the
// kernel like any other non-VIP packet.
func (b *Balancer) DeleteVIP(v VIP) error {
	b.mu.Lock()
	defer b.mu.Unlock()

	key := vipKey(v)
	var meta balancerVipMeta
	if err := b.objs.Vips.LookupAndDelete(&key, &meta); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("vip %s: %w", v, ErrUnknownVIP)
		}
		return fmt.Errorf("vip %s: delete: %w", v, err)
	}
	slots, err := b.readSlots()
	if err != nil {
		return fmt.Errorf("vip %s: %w", v, err)
	}
	var owned []uint32
	for s, def := range slots {
		if !def.free() && def.VipNum == meta.VipNum {
			owned = append(owned, uint32(s))
		}
	}
	if err := b.freeSlots(slots, owned); err != nil {
		return fmt.Errorf("vip %s: remove reals: %w", v, err)
	}
	if err := b.syncVIPAddr(v.Addr); err != nil {
		return fmt.Errorf("vip %s: %w", v, err)
	}
	return nil
}

// syncVIPAddr makes vip_addrs hold addr exactly while some VIP has it, and
// vip_addr_filter the bits of the VIP addresses, after a VIP of addr was
// added or deleted.
func (b *Balancer) syncVIPAddr(addr netip.Addr) error {
	vips, err := b.vipNums()
	if err != nil {
		return err
	}
	var n uint32
	var filter balancerAddrFilter
	for v := range vips {
		if v.Addr == addr {
			n++
		}
		filter.set(v.Addr)
	}
	key := addrWords(addr)
	if n > 0 {
		err = b.objs.VipAddrs.Put(key, n)
	} else if err = b.objs.VipAddrs.Delete(key); errors.Is(err, ebpf.ErrKeyNotExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("vip address %s: %w", addr, err)
	}
	// Whole: one update, so the program reads every bit either old or
	// new. Packets for an address a VIP just left may read its bit
	// still set; they take the lookups, which find no VIP.
	if err := b.objs.VipAddrFilter.Put(addrFilterKey, &filter); err != nil {
		return fmt.Errorf("vip address filter: %w", err)
	}
	return nil
}

// addrFilterKey is ADDR_FILTER_KEY, the filter array's only entry.
const addrFilterKey uint32 = 0

// set sets addr's bit, the one addr_filter_bit (headers/addr.h) tests.
func (f *balancerAddrFilter) set(addr netip.Addr) {
	bit := addrFilterBit(addr)
	f.Words[bit/64] |= 1 << (bit % 64)
}

// addrFilterBit is addr_filter_bit on the same words.
func addrFilterBit(addr netip.Addr) uint32 {
	w := addrWords(addr)
	fold := w[0] ^ w[1] ^ w[2] ^ w[3]
	return (fold ^ fold>>16) % (64 * uint32(len(balancerAddrFilter{}.Words)))
}

// VIPs lists every VIP with its reals, weights and path MTUs (as SetVIP
// gave them, not as routers lowered them), reals sorted by address.
func (b *Balancer) VIPs() (map[VIP][]Real, error) {
	vips, err := b.vipNums()
	if err != nil {
		return nil, err
	}
	slots, err := b.readSlots()
	if err != nil {
		return nil, err
	}
	byNum := map[uint32][]Real{}
	for _, def := range slots {
		if !def.free() {
			byNum[def.VipNum] = append(byNum[def.VipNum], Real{Addr: addrFromWords(def.Addr), Weight: def.Weight, MTU: int(def.PathMtu)})
		}
	}
	out := make(map[VIP][]Real, len(vips))
	for v, num := range vips {
		reals := byNum[num]
		slices.SortFunc(reals, func(a, b Real) int { return a.Addr.Compare(b.Addr) })
		out[v] = reals
	}
	return out, nil
}

// vipNums reads the vips map.
func (b *Balancer) vipNums() (map[VIP]uint32, error) {
	vips := map[VIP]uint32{}
	var key balancerVipKey
	var meta balancerVipMeta
	iter := b.objs.Vips.Iterate()
	for iter.Next(&key, &meta) {
		vips[vipFromMap(key, meta)] = meta.VipNum
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list vips: %w", err)
	}
	return vips, nil
}

// freeVIPNum returns the lowest vip number no VIP uses.
func (b *Balancer) freeVIPNum() (uint32, error) {
	vips, err := b.vipNums()
	if err != nil {
		return 0, err
	}
	var used [MaxVIPs]bool
	for _, num := range vips {
		if num < MaxVIPs {
			used[num] = true
		}
	}
	if num := slices.Index(used[:], false); num >= 0 {
		return uint32(num), nil
	}
	return 0, fmt.Errorf("all %d vips in use", MaxVIPs)
}

// readSlots reads the whole reals map in one batch; index is slot.
func (b *Balancer) readSlots() ([]balancerRealDef, error) {
	n := int(b.objs.Reals.MaxEntries())
	keys := make([]uint32, n)
	defs := make([]balancerRealDef, n)
	var cursor ebpf.MapBatchCursor
	count, err := b.objs.Reals.BatchLookup(&cursor, keys, defs, nil)
	// The batch covers the whole array, so the kernel also reports that
	// no keys are left.
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, fmt.Errorf("read reals: %w", err)
	}
	if count != n {
		return nil, fmt.Errorf("read reals: got %d of %d slots", count, n)
	}
	slots := make([]balancerRealDef, n)
	for i, k := range keys {
		slots[k] = defs[i]
	}
	return slots, nil
}

func (b *Balancer) writeSlots(keys []uint32, defs []balancerRealDef) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := b.objs.Reals.BatchUpdate(keys, defs, nil)
	return err
}

// freeSlots empties slots and moves their generation on, which is what
// invalidates LRU entries pinned to them.
func (b *Balancer) freeSlots(table []balancerRealDef, slots []uint32) error {
	defs := make([]balancerRealDef, len(slots))
	for i, s := range slots {
		defs[i] = balancerRealDef{Gen: table[s].Gen + 1}
	}
	return b.writeSlots(slots, defs)
}
