/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
#ifndef __DECAP_MAPS_H
#define __DECAP_MAPS_H

#include "dsr_structs.h"
#include "bpf_helpers.h"

/* Outer destinations this host decapsulates for, IPv4 and IPv6, in the
 * 16-byte form (dsr_structs.h). Presence is the whole answer; the value is
 * unused. */
#define MAX_DECAP_DSTS 64

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32[4]);
	__type(value, __u8);
	__uint(max_entries, MAX_DECAP_DSTS);
} decap_dsts SEC(".maps");

/* Counts packets. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, enum decap_stat);
	__type(value, __u64);
	__uint(max_entries, DECAP_STATS_MAX);
} decap_stats SEC(".maps");

#endif /* __DECAP_MAPS_H */
