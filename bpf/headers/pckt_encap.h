/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* Encapsulation and decapsulation in place: IPIP towards IPv4 reals, IPv6
 * outer headers (ip6ip6 and 4in6) towards IPv6 reals. After
 * bpf_xdp_adjust_head every packet pointer is stale, so each function
 * re-derives and re-checks them before writing. */
#ifndef __PCKT_ENCAP_H
#define __PCKT_ENCAP_H

#include <stdbool.h>

#include "dsr_structs.h"
#include "addr.h"
#include "csum.h"
#include "pckt_parsing.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"

/* The traffic class of an IPv6 header: the DSCP and ECN bits IPv4 keeps
 * in tos, split over the first two bytes. */
#define IPV6_TCLASS_SHIFT 4
#define IPV6_TCLASS_NIBBLE 0xf

static __always_inline __u8 ipv6_tclass(const struct ipv6hdr *ip6)
{
	return ip6->priority << IPV6_TCLASS_SHIFT | ip6->flow_lbl[0] >> IPV6_TCLASS_SHIFT;
}

/* The inner packet's DSCP and ECN, which the outer header carries on. */
static __always_inline __u8 inner_tclass(const struct packet *pkt)
{
	return pkt->ipv6 ? ipv6_tclass(pkt->ip6) : pkt->ip->tos;
}

/* Grows the frame by outer_len in front of the IP header, after cutting
 * trailer bytes off its end, and rewrites the Ethernet header towards the
 * next hop, from the MAC the frame arrived for (it arrived addressed to
 * us, and goes back out of the same interface). Every packet pointer is
 * stale afterwards. Returns where the outer header goes, or NULL if the
 * frame could not be reshaped or, once reshaped, re-checked: the caller
 * must then drop it, since it may no longer be the original. */
static __always_inline void *encap_frame(struct xdp_md *ctx, const struct packet *pkt,
					 const struct lb_config *cfg, const unsigned int outer_len,
					 __be16 outer_proto, __u32 trailer)
{
	__u8 own_mac[ETH_ALEN];
	__builtin_memcpy(own_mac, pkt->eth->h_dest, ETH_ALEN);

	if (trailer && bpf_xdp_adjust_tail(ctx, -(int)trailer))
		return NULL;
	if (bpf_xdp_adjust_head(ctx, -(int)outer_len))
		return NULL;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) + outer_len > data_end)
		return NULL;

	__builtin_memcpy(eth->h_dest, cfg->next_hop_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, own_mac, ETH_ALEN);
	eth->h_proto = outer_proto;
	return eth + 1;
}

/* Prepends an outer IPv4 header from cfg->src_addr to real and rewrites the
 * Ethernet header towards the next hop; the inner IPv4 packet is not
 * touched, trailer bytes after it are cut. False: drop (encap_frame). */
static __always_inline bool ipip_encap(struct xdp_md *ctx, const struct packet *pkt,
				       const struct lb_config *cfg, __be32 real, __u32 trailer)
{
	__u8 tos = inner_tclass(pkt);
	__u16 inner_len = pkt->l3_len;

	struct iphdr *outer = encap_frame(ctx, pkt, cfg, sizeof(*outer), bpf_htons(ETH_P_IP), trailer);
	if (!outer)
		return false;

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

/* Prepends an outer IPv6 header from cfg->src_addr6 to real: next header
 * IPv6 for an IPv6 packet (ip6ip6, RFC 2473), IPIP for an IPv4 one (4in6).
 * The flow label is 0, as Katran leaves it: the lab has no ECMP on the way
 * to a real to spread. IPv6 routers never fragment, so a smaller path is
 * reported with Packet Too Big to our address, as with DF in IPv4.
 * Trailer bytes are cut. False: drop (encap_frame). */
static __always_inline bool ip6_encap(struct xdp_md *ctx, const struct packet *pkt,
				      const struct lb_config *cfg, const __be32 real[ADDR_WORDS], __u32 trailer)
{
	__u8 tclass = inner_tclass(pkt);
	__u16 inner_len = pkt->l3_len;
	__u8 nexthdr = pkt->ipv6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
	__be32 dst[ADDR_WORDS];
	addr_copy(dst, real);

	struct ipv6hdr *outer = encap_frame(ctx, pkt, cfg, sizeof(*outer), bpf_htons(ETH_P_IPV6), trailer);
	if (!outer)
		return false;

	outer->version = IPV6_VERSION;
	outer->priority = tclass >> IPV6_TCLASS_SHIFT;
	outer->flow_lbl[0] = (tclass & IPV6_TCLASS_NIBBLE) << IPV6_TCLASS_SHIFT;
	outer->flow_lbl[1] = 0;
	outer->flow_lbl[2] = 0;
	outer->payload_len = bpf_htons(inner_len);
	outer->nexthdr = nexthdr;
	outer->hop_limit = ORIGIN_TTL;
	addr_copy(outer->saddr, cfg->src_addr6);
	addr_copy(outer->daddr, dst);
	return true;
}

/* Removes an outer header of outer_len bytes, keeping the Ethernet
 * addresses and giving the frame the inner packet's EtherType. The caller
 * has checked that a full inner IP header follows, so shrinking cannot
 * fail; false means it did anyway and the frame, already shrunk or not,
 * must be aborted. */
static __always_inline bool decap(struct xdp_md *ctx, const struct packet *pkt, const unsigned int outer_len,
				  __be16 inner_proto)
{
	struct ethhdr saved = *pkt->eth;

	if (bpf_xdp_adjust_head(ctx, outer_len))
		return false;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return false;

	*eth = saved;
	eth->h_proto = inner_proto;
	return true;
}

#endif /* __PCKT_ENCAP_H */
