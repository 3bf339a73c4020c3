/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* ICMP the balancer answers itself, built in place: "fragmentation needed"
 * (ICMPv6 Packet Too Big) for a packet too big for the path, and echo
 * replies for pings to a VIP.
 * After head and tail adjustments every packet pointer is stale, so a
 * reply is re-derived and re-checked before it is written. */
#ifndef __PCKT_ICMP_H
#define __PCKT_ICMP_H

#include <stdbool.h>

#include "dsr_structs.h"
#include "addr.h"
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

/* Makes the frame's Ethernet header return it to the router it came from;
 * the EtherType stays the original's, the reply's family. */
static __always_inline void eth_return(struct ethhdr *eth, const struct ethhdr *orig)
{
	__builtin_memcpy(eth->h_dest, orig->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, orig->h_dest, ETH_ALEN);
	eth->h_proto = orig->h_proto;
}

/* icmp_too_big for one quote length. quote_len is a compile-time constant
 * at both calls, so every offset and the checksum loop are fixed; the
 * caller has checked the packet has quote_len bytes of IP. */
static __always_inline bool icmp_too_big_quoting(struct xdp_md *ctx, const struct packet *pkt, __u16 mtu,
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
	icmp->un.frag.mtu = bpf_htons(mtu);
	icmp->checksum = csum_fold(csum_words(icmp, TOO_BIG_ICMP_LEN(quote_len)));
	return true;
}

/* Turns the frame of an IPv4 packet into an ICMP
 * destination-unreachable/fragmentation-needed from the VIP to the client,
 * advertising mtu (the largest packet that still fits the path once
 * encapsulated), addressed back to the router it came from, quoting as
 * much of the packet as RFC 1812 asks for, never past its end (tot_len):
 * bytes after it in the frame are not the packet's. The caller has checked
 * that the packet is longer than mtu, which is at least MIN_PATH_MTU minus
 * the outer header: the packet then has ICMP_QUOTE_MIN_LEN bytes (the
 * check keeps the program safe if Go was bypassed). Returns false if the
 * frame could not be reshaped: it must then be dropped. */
static __always_inline bool icmp_too_big(struct xdp_md *ctx, const struct packet *pkt, __u16 mtu)
{
	if (pkt->l3_len < ICMP_QUOTE_MIN_LEN)
		return false;
	if (pkt->l3_len >= ICMP_QUOTE_MAX_LEN)
		return icmp_too_big_quoting(ctx, pkt, mtu, ICMP_QUOTE_MAX_LEN);
	return icmp_too_big_quoting(ctx, pkt, mtu, ICMP_QUOTE_MIN_LEN);
}

#define TOO_BIG6_HEADROOM (sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr))
#define TOO_BIG6_ICMP_LEN (sizeof(struct icmp6hdr) + ICMP6_QUOTE_LEN)
#define TOO_BIG6_FRAME_LEN (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + TOO_BIG6_ICMP_LEN)

/* The sum of the IPv6 pseudo-header (RFC 8200 8.1) of an upper-layer
 * message of len bytes and protocol proto in ip6, whose addresses are set:
 * both addresses, the length and the next header, each as it sits in
 * memory, like the words csum_words adds. */
static __always_inline __u32 ipv6_pseudo_sum(const struct ipv6hdr *ip6, __u16 len, __u8 proto)
{
	return csum_words(ip6->saddr, 2 * sizeof(ip6->saddr)) + bpf_htons(len) + bpf_htons(proto);
}

/* icmp_too_big for an IPv6 packet: an ICMPv6 Packet Too Big from the VIP
 * to the client advertising mtu, quoting ICMP6_QUOTE_LEN bytes, which the
 * packet has (a path to an IPv6 real is at least IPV6_MIN_MTU; the check
 * keeps the program safe if Go was bypassed). */
static __always_inline bool icmp6_too_big(struct xdp_md *ctx, const struct packet *pkt, __u32 mtu)
{
	if (pkt->l3_len < ICMP6_QUOTE_LEN)
		return false;
	struct ethhdr orig_eth = *pkt->eth;
	__be32 client[ADDR_WORDS], vip[ADDR_WORDS];
	addr_copy(client, pkt->ip6->saddr);
	addr_copy(vip, pkt->ip6->daddr);

	if (bpf_xdp_adjust_head(ctx, -(int)TOO_BIG6_HEADROOM))
		return false;
	int frame_len = ctx->data_end - ctx->data;
	if (bpf_xdp_adjust_tail(ctx, (int)TOO_BIG6_FRAME_LEN - frame_len))
		return false;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + TOO_BIG6_FRAME_LEN > data_end)
		return false;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct icmp6hdr *icmp = (void *)(ip6 + 1);

	eth_return(eth, &orig_eth);

	ip6->version = IPV6_VERSION;
	ip6->priority = 0;
	ip6->flow_lbl[0] = 0;
	ip6->flow_lbl[1] = 0;
	ip6->flow_lbl[2] = 0;
	ip6->payload_len = bpf_htons(TOO_BIG6_ICMP_LEN);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = ORIGIN_TTL;
	addr_copy(ip6->saddr, vip);
	addr_copy(ip6->daddr, client);

	icmp->type = ICMPV6_PKT_TOOBIG;
	icmp->code = 0;
	icmp->checksum = 0;
	icmp->un.mtu = bpf_htonl(mtu);
	icmp->checksum = csum_fold(csum_words(icmp, TOO_BIG6_ICMP_LEN) +
				   ipv6_pseudo_sum(ip6, TOO_BIG6_ICMP_LEN, IPPROTO_ICMPV6));
	return true;
}

/* What a search for a non-zero byte in part of the frame, at least 8
 * bytes long, works on; the loop's callback sees it through a pointer. */
struct zero_walk {
	struct xdp_md *ctx;
	/* Frame offsets: the next bytes to look at, and the end. */
	__u32 off;
	__u32 end;
	bool nonzero;
};

/* One step of the walk: the next 8 bytes, the last step's overlapping the
 * one before it. Returns 1 to stop. */
static long find_nonzero(__u64 index, void *data)
{
	struct zero_walk *walk = data;
	__u64 bytes;
	__u32 off = walk->off + sizeof(bytes) > walk->end ? walk->end - sizeof(bytes) : walk->off;
	if (bpf_xdp_load_bytes(walk->ctx, off, &bytes, sizeof(bytes)) || bytes) {
		walk->nonzero = true;
		return 1;
	}
	walk->off = off + sizeof(bytes);
	return walk->off >= walk->end;
}

/* Whether the ICMP message at icmp, pkt's, is all zero bytes. */
static __always_inline bool icmp_is_zero(struct xdp_md *ctx, const struct packet *pkt, const struct icmphdr *icmp)
{
	__u32 off = (void *)icmp - (void *)(long)ctx->data;
	struct zero_walk walk = {.ctx = ctx, .off = off, .end = off + pkt->l4_len};
	bpf_loop((pkt->l4_len + sizeof(__u64) - 1) / sizeof(__u64), find_nonzero, &walk, 0);
	return !walk.nonzero;
}

/* Turns an echo request into its reply, in place: addresses swapped, type
 * echo reply, TTL that of a packet we originate, everything else (options,
 * identifier, data, padding) as it came. The checksums are updated for the
 * words that change rather than summed again, so options and data of any
 * length need no loop, but for one case: RFC 1624's update (eqn. 3)
 * never yields 0xffff, the checksum of a message of zeros only (type 0,
 * identifier 0, sequence 0, no data or zeros). It yields 0x0000 instead,
 * as it does, rightly, for a message whose words sum to 0xffff; only
 * then is the message read, at this point all zero bytes (checksum
 * included) or not. The IP header is never all zero. */
static __always_inline void icmp_echo_reply(struct xdp_md *ctx, const struct packet *pkt, struct icmphdr *icmp)
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
	if (!icmp->checksum && icmp_is_zero(ctx, pkt, icmp))
		icmp->checksum = CSUM_OF_ZEROS;
}

/* icmp_echo_reply for ICMPv6. The pseudo-header's addresses are swapped,
 * which leaves its sum as it is, and the hop limit is not checksummed:
 * only the type word changes the checksum. The pseudo-header's length and
 * next header are never zero, so neither is what the checksum covers:
 * RFC 1624's update is always right here. Extension headers stay. */
static __always_inline void icmp6_echo_reply(const struct packet *pkt, struct icmp6hdr *icmp)
{
	struct ethhdr orig_eth = *pkt->eth;
	eth_return(pkt->eth, &orig_eth);

	struct ipv6hdr *ip6 = pkt->ip6;
	__be32 client[ADDR_WORDS];
	addr_copy(client, ip6->saddr);
	addr_copy(ip6->saddr, ip6->daddr);
	addr_copy(ip6->daddr, client);
	ip6->hop_limit = ORIGIN_TTL;

	__u16 *type_word = (void *)&icmp->type;
	__u16 old_type_word = *type_word;
	icmp->type = ICMPV6_ECHO_REPLY;
	icmp->code = 0;
	csum_replace16(&icmp->checksum, old_type_word, *type_word);
}

#endif /* __PCKT_ICMP_H */
