// SPDX-License-Identifier: GPL-2.0
//
// A balancer built the way Katran's is: its structs in a header found
// through -I, glibc's <stdint.h>, flags from the build (-D__KERNEL__
// -DRING_SIZE=...), a VIP map keyed by struct vip_definition, MACs in
// ctl_array, and flows pinned to reals in per-CPU LRUs reached through
// lru_mapping, a map of maps the loader fills (fallback_cache where a CPU
// has none). IPIP encapsulation and XDP_TX as in examples/xdp-lb-minimal.

#ifndef __KERNEL__
#error built without -D__KERNEL__: the topology's cflags did not reach clang
#endif
#ifndef RING_SIZE
#error built without -DRING_SIZE
#endif

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "katranlike_structs.h"

#define CTL_ROUTER_MAC 0
#define CTL_OWN_MAC 1
#define MAX_REALS 4

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct vip_definition);
	__type(value, struct vip_meta);
} vip_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct real_definition);
} reals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct ctl_value);
} ctl_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1000);
	__type(key, struct flow_key);
	__type(value, struct real_pos_lru);
} fallback_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u32);
} lru_mapping SEC(".maps");

/* A ring of RING_SIZE slots, each the index of a real. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RING_SIZE);
	__type(key, __u32);
	__type(value, __u32);
} ch_ring SEC(".maps");

static __always_inline __u16 ipv4_csum(struct iphdr *iph)
{
	__u16 *word = (__u16 *)iph;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)sizeof(*iph) / 2; i++)
		sum += word[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int balancer_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(iph + 1);

	if ((void *)(tcp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    iph->ihl != 5 || iph->protocol != IPPROTO_TCP)
		return XDP_PASS;

	struct vip_definition vip = {};
	vip.vip = iph->daddr;
	vip.port = tcp->dest; /* network order, as Katran keeps it */
	vip.proto = iph->protocol;
	if (!bpf_map_lookup_elem(&vip_map, &vip))
		return XDP_PASS;

	struct flow_key flow = {};
	flow.src = iph->saddr;
	flow.dst = iph->daddr;
	flow.port16[0] = tcp->source;
	flow.port16[1] = tcp->dest;
	flow.proto = iph->protocol;

	__u32 cpu = bpf_get_smp_processor_id();
	void *lru = bpf_map_lookup_elem(&lru_mapping, &cpu);
	if (!lru)
		lru = &fallback_cache;
	__u32 pos;
	struct real_pos_lru *pinned = bpf_map_lookup_elem(lru, &flow);
	if (pinned) {
		pos = pinned->pos;
	} else {
		__u32 slot = (flow.src ^ flow.port16[0]) % RING_SIZE;
		__u32 *ring = bpf_map_lookup_elem(&ch_ring, &slot);
		pos = ring ? *ring : 0;
		struct real_pos_lru entry = {.pos = pos, .atime = bpf_ktime_get_ns()};
		bpf_map_update_elem(lru, &flow, &entry, BPF_ANY);
	}
	struct real_definition *real = bpf_map_lookup_elem(&reals, &pos);
	__u32 key = CTL_ROUTER_MAC;
	struct ctl_value *router = bpf_map_lookup_elem(&ctl_array, &key);
	key = CTL_OWN_MAC;
	struct ctl_value *own = bpf_map_lookup_elem(&ctl_array, &key);
	if (!real || !real->dst || !router || !own)
		return XDP_DROP;

	__u16 inner_len = bpf_ntohs(iph->tot_len);
	__be32 vip_addr = iph->daddr;
	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	struct iphdr *outer = (void *)(eth + 1);
	if ((void *)(outer + 1) > data_end)
		return XDP_DROP;

	__builtin_memcpy(eth->h_dest, router->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, own->mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = 0;
	outer->tot_len = bpf_htons(inner_len + sizeof(*outer));
	outer->id = 0;
	outer->frag_off = 0;
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->saddr = vip_addr;
	outer->daddr = real->dst;
	outer->check = 0;
	outer->check = ipv4_csum(outer);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
