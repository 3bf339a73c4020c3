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

/* Indexed by vip_meta.vip_num. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct real_list);
	__uint(max_entries, MAX_VIPS);
} vip_reals SEC(".maps");

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

/* Counts packets. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, enum global_stat);
	__type(value, __u64);
	__uint(max_entries, GLOBAL_STATS_MAX);
} global_stats SEC(".maps");

#endif /* __BALANCER_MAPS_H */
