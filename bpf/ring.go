package bpf

import (
	"fmt"
	"net/netip"
)

// Ring returns v's consistent-hash ring as the balancer holds it: entry i
// is the address of the real that owns it, the zero Addr where no real
// does (every real drained). Balancers of a tier must hold equal rings, so
// that a flow the router moves to another balancer reaches the same real;
// comparing rings (not slot numbers, which depend on each balancer's
// history) says whether they do.
func (b *Balancer) Ring(v VIP) ([]netip.Addr, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := vipKey(v)
	var meta balancerVipMeta
	if err := b.objs.Vips.Lookup(&key, &meta); err != nil {
		return nil, fmt.Errorf("vip %s: %w", v, err)
	}
	var ring balancerChRing
	if err := b.objs.ChRings.Lookup(meta.VipNum, &ring); err != nil {
		return nil, fmt.Errorf("vip %s: ring: %w", v, err)
	}
	slots, err := b.readSlots()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, len(ring.Slots))
	for i, s := range ring.Slots {
		if int(s) < len(slots) && !slots[s].free() && slots[s].VipNum == meta.VipNum && slots[s].Weight > 0 {
			out[i] = addrFromWords(slots[s].Addr)
		}
	}
	return out, nil
}
