/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
#ifndef __BALANCER_MAPS_H
#define __BALANCER_MAPS_H

#include "dsr_structs.h"
#include "bpf_helpers.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct vip_key);
	__type(value, struct vip_meta);
	__uint(max_entries, MAX_VIPS);
} vips SEC(".maps");

/* Every address some VIP has, with how many VIPs have it: what the
 * balancer answers pings for and drops fragments to, packets that carry
 * no port to look a VIP up by. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	/* 16-byte form (dsr_structs.h). */
	__type(key, __be32[4]);
	__type(value, __u32);
	__uint(max_entries, MAX_VIPS);
} vip_addrs SEC(".maps");

/* vip_addrs as a filter, in its only entry: one array read, inlined by
 * the kernel, tells nearly every packet for no VIP (on a balancer host,
 * most packets) from a VIP's before any hash lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct addr_filter);
	__uint(max_entries, ADDR_FILTER_ENTRIES);
} vip_addr_filter SEC(".maps");

/* Indexed by vip_meta.vip_num. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ch_ring);
	__uint(max_entries, MAX_VIPS);
} ch_rings SEC(".maps");

/* Indexed by real slot, as found in a ring or a flow_pin. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct real_def);
	__uint(max_entries, MAX_REALS);
} reals SEC(".maps");

/* The connection table: a flow keeps the real it was first given even when
 * the ring changes under it. Per CPU, so a hit needs no shared cache line;
 * a NIC's RSS keeps a flow's packets on one CPU, and where nothing does
 * (veth) a miss searches the other CPUs' copies (balancer.h). One element
 * per flow holds every CPU's copy; a program writes only its own CPU's,
 * and the others of a new element start zeroed. One LRU list for all
 * CPUs (no BPF_F_NO_COMMON_LRU), so max_entries is the number of flows,
 * whatever the CPU count. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, struct flow_key);
	__type(value, struct flow_pin);
	__uint(max_entries, DEFAULT_LRU_SIZE);
} lru_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lb_config);
	__uint(max_entries, CONFIG_ENTRIES);
} config SEC(".maps");

/* Indexed by vip_meta.vip_num; per CPU so the fast path needs no atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lb_counters);
	__uint(max_entries, MAX_VIPS);
} vip_stats SEC(".maps");

/* Indexed by real slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lb_counters);
	__uint(max_entries, MAX_REALS);
} real_stats SEC(".maps");

/* Counts packets. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, enum global_stat);
	__type(value, __u64);
	__uint(max_entries, GLOBAL_STATS_MAX);
} global_stats SEC(".maps");

#endif /* __BALANCER_MAPS_H */
