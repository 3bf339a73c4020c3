/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* IPIP encapsulation and decapsulation in place. After bpf_xdp_adjust_head
 * every packet pointer is stale, so both functions re-derive and re-check
 * them before writing. */
#ifndef __PCKT_ENCAP_H
#define __PCKT_ENCAP_H

#include <stdbool.h>

#include "dsr_structs.h"
#include "csum.h"
#include "pckt_parsing.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"

/* Prepends an outer IPv4 header from cfg->src_addr to real and rewrites the
 * Ethernet header towards the next hop; the inner packet is not touched.
 * Returns false if the frame could not be grown or, once grown, re-checked:
 * the caller must then drop it, since it may no longer be the original. */
static __always_inline bool ipip_encap(struct xdp_md *ctx, const struct packet *pkt,
				       const struct lb_config *cfg, __be32 real)
{
	/* The frame arrived addressed to us, so its destination MAC is the
	 * source of the frame we send back out of the same interface. */
	__u8 own_mac[ETH_ALEN];
	__builtin_memcpy(own_mac, pkt->eth->h_dest, ETH_ALEN);
	__u8 tos = pkt->ip->tos;
	__u16 inner_len = bpf_ntohs(pkt->ip->tot_len);

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return false;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *outer = data + sizeof(*eth);
	if ((void *)(outer + 1) > data_end)
		return false;

	__builtin_memcpy(eth->h_dest, cfg->next_hop_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, own_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);

	outer->version = IPV4_VERSION;
	outer->ihl = IPV4_IHL_NO_OPTIONS;
	outer->tos = tos;
	outer->tot_len = bpf_htons(inner_len + sizeof(*outer));
	outer->id = 0;
	/* DF, unlike Katran: an outer fragment would have to be reassembled
	 * before decapsulation, and a real without an ipip device decaps in
	 * XDP (decap.bpf.c), which sees fragments one by one and leaves them
	 * to a kernel that cannot decapsulate: a fragmented packet would be
	 * lost without a word. With DF a router on a smaller path reports
	 * frag-needed to our address instead, which lowers the real's path
	 * MTU (balancer.h, lower_path_mtu), and the client's next big
	 * packet is answered at the smaller size. */
	outer->frag_off = bpf_htons(IP_DF);
	outer->ttl = ORIGIN_TTL;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = cfg->src_addr;
	outer->daddr = real;
	outer->check = ipv4_csum(outer);
	return true;
}

/* Removes the outer IPv4 header of an IPIP packet, keeping the Ethernet
 * addresses. The caller has checked that a full inner IPv4 header follows,
 * so shrinking cannot fail; false means it did anyway and the frame, already
 * shrunk or not, must be aborted. */
static __always_inline bool ipip_decap(struct xdp_md *ctx, const struct packet *pkt)
{
	struct ethhdr saved = *pkt->eth;

	if (bpf_xdp_adjust_head(ctx, sizeof(struct iphdr)))
		return false;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return false;

	*eth = saved;
	return true;
}

#endif /* __PCKT_ENCAP_H */
