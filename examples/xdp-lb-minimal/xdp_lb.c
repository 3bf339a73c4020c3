// SPDX-License-Identifier: GPL-2.0
//
// The simplest IPIP Direct Server Return balancer: one VIP, one real server.
//
// A packet to the VIP gets a second IPv4 header in front of it (protocol 4,
// IP in IP) addressed to the real server, new Ethernet addresses toward the
// router, and goes back out the interface it came in on (XDP_TX). The real
// strips the outer header and answers the client directly.
//
// Everything the program needs to know is in lb_map, filled by dsrlab from
// lab.yaml, so nothing here is specific to one lab.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct config {
	__be32 real_server_ip;          // outer destination
	__be32 lb_vip;                  // the VIP; also the outer source
	unsigned char src_mac[ETH_ALEN]; // this interface's MAC
	unsigned char dst_mac[ETH_ALEN]; // the router's MAC
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} lb_map SEC(".maps");

// The IPv4 header checksum: the ones' complement of the ones' complement sum
// of the header's 16-bit words (RFC 1071).
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
int xdp_load_balancer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	// Every read of the packet needs a bounds check the verifier can see.
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return XDP_PASS;

	__u32 key = 0;
	struct config *cfg = bpf_map_lookup_elem(&lb_map, &key);
	if (!cfg)
		return XDP_PASS;
	if (iph->daddr != cfg->lb_vip)
		return XDP_PASS; // not for the VIP: the kernel handles it

	// Read before moving the packet start: the pointers are invalid after.
	__u16 inner_len = bpf_ntohs(iph->tot_len);

	// Grow the packet at the front by one IPv4 header. The links on the way
	// to the real need 20 bytes of MTU headroom for it (dsrlab sets that up).
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
	outer->saddr = cfg->lb_vip;
	outer->daddr = cfg->real_server_ip;
	outer->check = 0;
	outer->check = ipv4_csum(outer);

	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
