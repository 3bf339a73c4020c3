/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* Header parsing. Every function only reads the packet and returns false for
 * anything the programs leave to the kernel, so a caller that gives up early
 * has never written to the frame. */
#ifndef __PCKT_PARSING_H
#define __PCKT_PARSING_H

#include <stdbool.h>

#include "dsr_structs.h"
#include "addr.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"

struct packet {
	struct ethhdr *eth;
	/* The IP header: ip for IPv4, ip6 for IPv6, as ipv6 says. Tests of
	 * the family read the flag, never a pointer: the verifier follows a
	 * NULL test of a packet pointer both ways, into the other family's
	 * NULL, but knows the constant the parser stored in the flag. */
	bool ipv6;
	struct iphdr *ip;
	struct ipv6hdr *ip6;
	/* Where the IP headers end, IPv4 options or IPv6 extension headers
	 * included; l4_len bytes from there are the IP packet's, as its
	 * header says, and l3_len bytes from the IP header. */
	void *l4;
	__u32 l4_len;
	__u32 l3_len;
	/* IPv4 options or IPv6 extension headers come before l4. */
	bool ip_options;
	/* Part of a fragmented packet: l4 holds no L4 header of its own. */
	bool fragment;
	/* Addresses and L4 protocol from the IP header; ports from the L4
	 * header, once parse_flow has read it. */
	struct flow_key flow;
	/* A TCP SYN opens a new connection, even on a 5-tuple the LRU still
	 * remembers from an earlier one. */
	bool tcp_syn;
	/* An ICMP error about flow, which is the quoted packet's flow seen
	 * from the client: it goes where flow's packets go, but is never
	 * answered with another ICMP error (RFC 1122 3.2.2, RFC 4443 2.4). */
	bool icmp_error;
};

/* The frame's EtherType, or 0 for a frame too short to have one. */
static __always_inline __be16 frame_ethertype(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return 0;
	return eth->h_proto;
}

static __always_inline __u32 ipv4_header_len(const struct iphdr *ip)
{
	return ip->ihl * IPV4_IHL_WORD;
}

static __always_inline bool ipv4_has_options(const struct iphdr *ip)
{
	return ip->ihl != IPV4_IHL_NO_OPTIONS;
}

static __always_inline bool ipv4_is_fragment(const struct iphdr *ip)
{
	return ip->frag_off & bpf_htons(IP_MF | IP_OFFSET);
}

/* Finds an IPv4 header, options included, whose tot_len covers it and fits
 * in the frame. Fragments are the caller's to judge. */
static __always_inline bool parse_ipv4(struct xdp_md *ctx, struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return false;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return false;
	if (ip->version != IPV4_VERSION || ip->ihl < IPV4_IHL_NO_OPTIONS)
		return false;

	/* Scalars, not packet pointers: the verifier caps pointer offsets. */
	__u32 hdr_len = ipv4_header_len(ip);
	__u32 l3_len = ctx->data_end - ctx->data - sizeof(*eth);
	__u16 tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hdr_len || tot_len > l3_len)
		return false;

	pkt->eth = eth;
	pkt->ip = ip;
	pkt->l4 = (void *)ip + hdr_len;
	pkt->l4_len = tot_len - hdr_len;
	pkt->l3_len = tot_len;
	pkt->ip_options = ipv4_has_options(ip);
	pkt->fragment = ipv4_is_fragment(ip);
	addr_from_v4(pkt->flow.src, ip->saddr);
	addr_from_v4(pkt->flow.dst, ip->daddr);
	pkt->flow.proto = ip->protocol;
	return true;
}

/* The extension headers parse_ipv6 steps over: their content is for
 * hosts and routers on the way, not for choosing a real. */
static __always_inline bool ipv6_is_skipped(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING || nexthdr == IPPROTO_DSTOPTS ||
	       nexthdr == IPPROTO_FRAGMENT;
}

/* Finds an IPv6 header whose payload fits in the frame and walks its
 * extension headers, each of which must lie in the payload: hop-by-hop,
 * destination options and routing headers are stepped over; a routing
 * header with segments left ends the walk there (the destination is a
 * waypoint, not where the packet is going), so its flow.proto is
 * IPPROTO_ROUTING, which no VIP has. A fragment header ends the walk too,
 * marking the packet a fragment, unless it is an atomic fragment (offset 0,
 * no more fragments: a whole packet, RFC 6946). False for a malformed
 * packet, a chain longer than IPV6_MAX_EXT_HEADERS, and an IPv4-mapped
 * destination, which would read as an IPv4 VIP's key. */
static __always_inline bool parse_ipv6(struct xdp_md *ctx, struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + sizeof(*eth);

	if ((void *)(ip6 + 1) > data_end)
		return false;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6) || ip6->version != IPV6_VERSION)
		return false;
	__u32 frame_l3_len = ctx->data_end - ctx->data - sizeof(*eth);
	__u32 l3_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (l3_len > frame_l3_len)
		return false;
	if (addr_is_v4(ip6->daddr))
		return false;

	__u8 nexthdr = ip6->nexthdr;
	/* From the IPv6 header; a scalar the verifier bounds, not a packet
	 * pointer. */
	__u32 off = sizeof(*ip6);
	bool fragment = false, waypoint = false;
#pragma unroll
	for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
		if (!ipv6_is_skipped(nexthdr) || fragment || waypoint)
			break;
		struct ipv6_rt_hdr *ext = (void *)ip6 + off;
		/* Every extension header is at least 8 bytes. */
		if ((void *)ext + IPV6_EXT_UNIT > data_end || off + IPV6_EXT_UNIT > l3_len)
			return false;
		__u32 ext_len = IPV6_EXT_UNIT;
		if (nexthdr == IPPROTO_FRAGMENT) {
			struct frag_hdr *frag = (void *)ext;
			fragment = frag->frag_off & bpf_htons(IP6_OFFSET | IP6_MF);
		} else {
			if (nexthdr == IPPROTO_ROUTING && ext->segments_left) {
				waypoint = true;
				break;
			}
			ext_len = (ext->hdrlen + 1) * IPV6_EXT_UNIT;
		}
		if (off + ext_len > l3_len)
			return false;
		nexthdr = ext->nexthdr;
		off += ext_len;
	}
	if (ipv6_is_skipped(nexthdr) && !fragment && !waypoint)
		return false;

	pkt->eth = eth;
	pkt->ipv6 = true;
	pkt->ip6 = ip6;
	pkt->l4 = (void *)ip6 + off;
	pkt->l4_len = l3_len - off;
	pkt->l3_len = l3_len;
	pkt->ip_options = off != sizeof(*ip6);
	pkt->fragment = fragment;
	addr_copy(pkt->flow.src, ip6->saddr);
	addr_copy(pkt->flow.dst, ip6->daddr);
	pkt->flow.proto = nexthdr;
	return true;
}

/* Adds the ports to pkt->flow of a parsed TCP or UDP packet (not a
 * fragment) with a complete L4 header. */
static __always_inline bool parse_flow(struct xdp_md *ctx, struct packet *pkt)
{
	void *data_end = (void *)(long)ctx->data_end;

	switch (pkt->flow.proto) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = pkt->l4;
		if ((void *)(tcp + 1) > data_end || pkt->l4_len < sizeof(*tcp))
			return false;
		pkt->flow.sport = tcp->source;
		pkt->flow.dport = tcp->dest;
		pkt->tcp_syn = bpf_ntohs(tcp->flags) & TCP_FLAG_SYN;
		return true;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = pkt->l4;
		if ((void *)(udp + 1) > data_end || pkt->l4_len < sizeof(*udp))
			return false;
		pkt->flow.sport = udp->source;
		pkt->flow.dport = udp->dest;
		return true;
	}
	}
	return false;
}

/* What an ICMP error quotes of the packet it is about: one of the IP
 * headers, by the error's family, and the quoted packet's ports. */
struct icmp_quote {
	struct iphdr *ip;
	struct ipv6hdr *ip6;
	struct l4_ports *ports;
};

/* Finds the ICMP header of a parsed ICMP packet (not a fragment) and, for
 * an error, the IPv4 header it quotes and the quoted packet's ports: only
 * their four bytes need be there (RFC 792 guarantees eight). quote->ports
 * is left NULL for an ICMP message that quotes nothing usable. */
static __always_inline struct icmphdr *parse_icmp(struct xdp_md *ctx, const struct packet *pkt,
						  struct icmp_quote *quote)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct icmphdr *icmp = pkt->l4;
	__u32 icmp_len = pkt->l4_len;
	if ((void *)(icmp + 1) > data_end || icmp_len < sizeof(*icmp))
		return NULL;
	if (icmp->type != ICMP_DEST_UNREACH)
		return icmp;

	struct iphdr *ip = (void *)(icmp + 1);
	if ((void *)(ip + 1) > data_end || icmp_len < sizeof(*icmp) + sizeof(*ip))
		return icmp;
	if (ip->version != IPV4_VERSION || ip->ihl < IPV4_IHL_NO_OPTIONS)
		return icmp;
	__u32 quoted_hdr_len = ipv4_header_len(ip);
	struct l4_ports *ports = (void *)ip + quoted_hdr_len;
	if ((void *)(ports + 1) > data_end || icmp_len < sizeof(*icmp) + quoted_hdr_len + sizeof(*ports))
		return icmp;
	quote->ip = ip;
	quote->ports = ports;
	return icmp;
}

/* parse_icmp for ICMPv6: the errors that may concern a VIP flow are
 * destination unreachable and Packet Too Big. The quoted IPv6 header's
 * next header must be the L4 header (or an inner IP header): a quote with
 * extension headers is left unparsed. */
static __always_inline struct icmp6hdr *parse_icmp6(struct xdp_md *ctx, const struct packet *pkt,
						    struct icmp_quote *quote)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct icmp6hdr *icmp = pkt->l4;
	__u32 icmp_len = pkt->l4_len;
	if ((void *)(icmp + 1) > data_end || icmp_len < sizeof(*icmp))
		return NULL;
	if (icmp->type != ICMPV6_DEST_UNREACH && icmp->type != ICMPV6_PKT_TOOBIG)
		return icmp;

	struct ipv6hdr *ip6 = (void *)(icmp + 1);
	struct l4_ports *ports = (void *)(ip6 + 1);
	if ((void *)(ports + 1) > data_end || icmp_len < sizeof(*icmp) + sizeof(*ip6) + sizeof(*ports))
		return icmp;
	if (ip6->version != IPV6_VERSION)
		return icmp;
	quote->ip6 = ip6;
	quote->ports = ports;
	return icmp;
}

#endif /* __PCKT_PARSING_H */
