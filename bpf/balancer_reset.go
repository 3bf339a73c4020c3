//go:build linux

package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// ForgetTraffic empties the connection table and zeroes every counter,
// keeping the configuration and the VIPs: the balancer is then as it was
// once configured, before its first packet. Packet tests start each case
// from there without loading the balancer again, which costs a
// verification of the whole program each time.
func (b *Balancer) ForgetTraffic() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var keys []balancerFlowKey
	var key balancerFlowKey
	for err := b.objs.LruFlows.NextKey(nil, &key); err == nil; err = b.objs.LruFlows.NextKey(key, &key) {
		keys = append(keys, key)
	}
	for _, k := range keys {
		if err := b.objs.LruFlows.Delete(k); err != nil {
			return fmt.Errorf("forget flows: %w", err)
		}
	}
	for stat := range balancerGlobalStatGLOBAL_STATS_MAX {
		if err := resetGlobal(b, stat); err != nil {
			return fmt.Errorf("zero counters: %w", err)
		}
	}
	vips, err := b.vipNums()
	if err != nil {
		return err
	}
	for _, num := range vips {
		if err := resetCounters(b.objs.VipStats, num); err != nil {
			return fmt.Errorf("zero counters: %w", err)
		}
	}
	slots, err := b.readSlots()
	if err != nil {
		return err
	}
	for slot, def := range slots {
		if !def.free() {
			if err := resetCounters(b.objs.RealStats, uint32(slot)); err != nil {
				return fmt.Errorf("zero counters: %w", err)
			}
		}
	}
	return nil
}

func resetGlobal(b *Balancer, stat balancerGlobalStat) error {
	n, err := sumPerCPU(b.objs.GlobalStats, stat)
	if err != nil || n == 0 {
		return err
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	return b.objs.GlobalStats.Put(stat, make([]uint64, cpus))
}
