/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* ICMP "fragmentation needed" built in place from the packet that was too
 * big. After the head and tail adjustments every packet pointer is stale,
 * so the reply is re-derived and re-checked before it is written. */
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
/* The ICMP message: header, quoted IP header, quoted start of payload. */
#define TOO_BIG_ICMP_LEN (sizeof(struct icmphdr) + sizeof(struct iphdr) + ICMP_QUOTED_L4_LEN)
#define TOO_BIG_IP_LEN (sizeof(struct iphdr) + TOO_BIG_ICMP_LEN)
#define TOO_BIG_FRAME_LEN (sizeof(struct ethhdr) + TOO_BIG_IP_LEN)

/* Turns the frame into an ICMP destination-unreachable/fragmentation-needed
 * from the VIP to the client, advertising the largest packet that still
 * fits path_mtu once encapsulated, addressed back to the router it came
 * from. The caller has checked that the packet is longer than path_mtu
 * minus the outer header, which is far longer than the reply, and that
 * path_mtu leaves an advertised MTU of at least the IPv4 minimum. Returns
 * false if the frame could not be reshaped: it must then be dropped. */
static __always_inline bool icmp_too_big(struct xdp_md *ctx, const struct packet *pkt, __u16 path_mtu)
{
	struct ethhdr orig_eth = *pkt->eth;
	__be32 client = pkt->ip->saddr;
	/* The client's kernel matches the quote, not the sender; answering
	 * from the VIP keeps the balancer's own address out of its view. */
	__be32 vip = pkt->ip->daddr;

	if (bpf_xdp_adjust_head(ctx, -(int)TOO_BIG_HEADROOM))
		return false;
	int frame_len = ctx->data_end - ctx->data;
	if (bpf_xdp_adjust_tail(ctx, (int)TOO_BIG_FRAME_LEN - frame_len))
		return false;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + TOO_BIG_FRAME_LEN > data_end)
		return false;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct icmphdr *icmp = (void *)(ip + 1);

	__builtin_memcpy(eth->h_dest, orig_eth.h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, orig_eth.h_dest, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);

	ip->version = IPV4_VERSION;
	ip->ihl = IPV4_IHL_NO_OPTIONS;
	ip->tos = 0;
	ip->tot_len = bpf_htons(TOO_BIG_IP_LEN);
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
	icmp->unused = 0;
	icmp->mtu = bpf_htons(path_mtu - sizeof(struct iphdr));
	icmp->checksum = csum_fold(csum_words(icmp, TOO_BIG_ICMP_LEN));
	return true;
}

#endif /* __PCKT_ICMP_H */
