// SPDX-License-Identifier: GPL-2.0
//
// An IPIP Direct Server Return balancer over several real servers.
//
// The reals sit in a hash map keyed by their index 0..real_count-1; a packet
// to the VIP goes to the real picked by a hash of its 5-tuple, so every packet
// of a connection reaches the same real as long as the reals do not change.
// Per-real packet and byte counters live in a per-CPU array (no atomics
// needed: each CPU counts in its own copy; `dsrlab map` shows the sum).
//
// Change a real while the lab runs:
//   dsrlab map katran reals set 0 '{addr: real3:eth0}'

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_REALS 16

struct config {
	__be32 vip;
	__be16 port;      // the VIP's port
	__u8 proto;       // the VIP's protocol (6 = TCP, 17 = UDP)
	__u32 real_count; // reals 0..real_count-1 are in use
	__be32 src_ip;    // outer source: this node's address
	unsigned char src_mac[ETH_ALEN];
	unsigned char dst_mac[ETH_ALEN]; // the next hop toward the reals
};

struct real {
	__be32 addr;
};

struct counters {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct real);
} reals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct counters);
} real_stats SEC(".maps");

// The first four bytes of TCP and UDP headers alike.
struct ports {
	__be16 src;
	__be16 dst;
};

// A 32-bit finalizer (MurmurHash3's fmix32): spreads every input bit over
// the whole result, so hash % real_count is even.
static __always_inline __u32 mix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 flow_hash(struct iphdr *iph, struct ports *p)
{
	__u32 h = mix(iph->saddr);
	h = mix(h ^ iph->daddr);
	h = mix(h ^ ((__u32)p->src << 16 | p->dst));
	return mix(h ^ iph->protocol);
}

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
int xdp_lb_hash(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end || iph->ihl < 5)
		return XDP_PASS;

	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || iph->daddr != cfg->vip || iph->protocol != cfg->proto)
		return XDP_PASS;
	// Fragments after the first carry no ports: leave them to the kernel.
	if (iph->frag_off & bpf_htons(0x1fff))
		return XDP_PASS;
	struct ports *ports = (void *)iph + iph->ihl * 4;
	if ((void *)(ports + 1) > data_end)
		return XDP_PASS;
	if (ports->dst != cfg->port)
		return XDP_PASS;

	if (cfg->real_count == 0)
		return XDP_DROP; // a VIP without reals answers nothing
	__u32 index = flow_hash(iph, ports) % cfg->real_count;
	struct real *real = bpf_map_lookup_elem(&reals, &index);
	if (!real)
		return XDP_DROP;

	__u16 inner_len = bpf_ntohs(iph->tot_len);
	struct counters *c = bpf_map_lookup_elem(&real_stats, &index);
	if (c) {
		c->packets++;
		c->bytes += inner_len;
	}

	// Copy what the encapsulation needs before the packet moves.
	__be32 daddr = real->addr, saddr = cfg->src_ip;
	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	struct iphdr *outer = (void *)(eth + 1);
	if ((void *)(outer + 1) > data_end)
		return XDP_DROP;

	__builtin_memcpy(eth->h_dest, cfg->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, cfg->src_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);

	outer->version = 4;
	outer->ihl = sizeof(*outer) / 4;
	outer->tos = 0;
	outer->tot_len = bpf_htons(inner_len + sizeof(*outer));
	outer->id = 0;
	outer->frag_off = 0;
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->saddr = saddr;
	outer->daddr = daddr;
	outer->check = 0;
	outer->check = ipv4_csum(outer);

	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
