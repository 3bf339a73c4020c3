/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* ICMP the balancer answers itself, built in place: "fragmentation needed"
 * for a packet too big for the path, and echo replies for pings to a VIP.
 * After head and tail adjustments every packet pointer is stale, so a
 * reply is re-derived and re-checked before it is written. */
#ifndef __PCKT_ICMP_H
#define __PCKT_ICMP_H

#include <stdbool.h>

#include "dsr_structs.h"
#include "csum.h"
#include "pckt_parsing.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"

/* Room made in front of the original IP header, which then already sits
 * where the reply quotes it. */
#define TOO_BIG_HEADROOM (sizeof(struct iphdr) + sizeof(struct icmphdr))
/* The ICMP message: header and the quoted start of the packet. */
#define TOO_BIG_ICMP_LEN(quote_len) (sizeof(struct icmphdr) + (quote_len))
#define TOO_BIG_IP_LEN(quote_len) (sizeof(struct iphdr) + TOO_BIG_ICMP_LEN(quote_len))
#define TOO_BIG_FRAME_LEN(quote_len) (sizeof(struct ethhdr) + TOO_BIG_IP_LEN(quote_len))

/* Makes the frame's Ethernet header return it to the router it came from. */
static __always_inline void eth_return(struct ethhdr *eth, const struct ethhdr *orig)
{
	__builtin_memcpy(eth->h_dest, orig->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, orig->h_dest, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
}

/* icmp_too_big for one quote length. quote_len is a compile-time constant
 * at both calls, so every offset and the checksum loop are fixed; the
 * caller has checked the packet has quote_len bytes of IP. */
static __always_inline bool icmp_too_big_quoting(struct xdp_md *ctx, const struct packet *pkt, __u16 path_mtu,
						 const unsigned int quote_len)
{
	struct ethhdr orig_eth = *pkt->eth;
	__be32 client = pkt->ip->saddr;
	/* The client's kernel matches the quote, not the sender; answering
	 * from the VIP keeps the balancer's own address out of its view. */
	__be32 vip = pkt->ip->daddr;

	if (bpf_xdp_adjust_head(ctx, -(int)TOO_BIG_HEADROOM))
		return false;
	int frame_len = ctx->data_end - ctx->data;
	if (bpf_xdp_adjust_tail(ctx, (int)TOO_BIG_FRAME_LEN(quote_len) - frame_len))
		return false;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + TOO_BIG_FRAME_LEN(quote_len) > data_end)
		return false;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct icmphdr *icmp = (void *)(ip + 1);

	eth_return(eth, &orig_eth);

	ip->version = IPV4_VERSION;
	ip->ihl = IPV4_IHL_NO_OPTIONS;
	ip->tos = 0;
	ip->tot_len = bpf_htons(TOO_BIG_IP_LEN(quote_len));
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = ORIGIN_TTL;
	ip->protocol = IPPROTO_ICMP;
	ip->check = 0;
	ip->saddr = vip;
	ip->daddr = client;
	ip->check = ipv4_csum(ip);

	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->un.frag.unused = 0;
	icmp->un.frag.mtu = bpf_htons(path_mtu - sizeof(struct iphdr));
	icmp->checksum = csum_fold(csum_words(icmp, TOO_BIG_ICMP_LEN(quote_len)));
	return true;
}

/* Turns the frame into an ICMP destination-unreachable/fragmentation-needed
 * from the VIP to the client, advertising the largest packet that still
 * fits path_mtu once encapsulated, addressed back to the router it came
 * from, quoting as much of the packet as RFC 1812 asks for. The caller
 * has checked that the packet is longer than path_mtu minus the outer
 * header, and that path_mtu is at least MIN_PATH_MTU: the packet then has
 * ICMP_QUOTE_MIN_LEN bytes. Returns false if the frame could not be
 * reshaped: it must then be dropped. */
static __always_inline bool icmp_too_big(struct xdp_md *ctx, const struct packet *pkt, __u16 path_mtu)
{
	if (bpf_ntohs(pkt->ip->tot_len) >= ICMP_QUOTE_MAX_LEN)
		return icmp_too_big_quoting(ctx, pkt, path_mtu, ICMP_QUOTE_MAX_LEN);
	return icmp_too_big_quoting(ctx, pkt, path_mtu, ICMP_QUOTE_MIN_LEN);
}

/* Turns an echo request into its reply, in place: addresses swapped, type
 * echo reply, TTL that of a packet we originate, everything else (options,
 * identifier, data, padding) as it came. The checksums are updated for the
 * words that change rather than summed again, so options and data of any
 * length need no loop. */
static __always_inline void icmp_echo_reply(const struct packet *pkt, struct icmphdr *icmp)
{
	struct ethhdr orig_eth = *pkt->eth;
	eth_return(pkt->eth, &orig_eth);

	struct iphdr *ip = pkt->ip;
	__be32 client = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = client;
	/* TTL and protocol share a checksummed word; swapping the addresses
	 * leaves the sum as it is. */
	__u16 *ttl_word = (void *)&ip->ttl;
	__u16 old_ttl_word = *ttl_word;
	ip->ttl = ORIGIN_TTL;
	csum_replace16(&ip->check, old_ttl_word, *ttl_word);

	__u16 *type_word = (void *)&icmp->type;
	__u16 old_type_word = *type_word;
	icmp->type = ICMP_ECHOREPLY;
	icmp->code = 0;
	csum_replace16(&icmp->checksum, old_type_word, *type_word);
}

#endif /* __PCKT_ICMP_H */
