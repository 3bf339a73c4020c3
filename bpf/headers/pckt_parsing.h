/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* Header parsing. Every function only reads the packet and returns false for
 * anything the programs leave to the kernel, so a caller that gives up early
 * has never written to the frame. */
#ifndef __PCKT_PARSING_H
#define __PCKT_PARSING_H

#include <stdbool.h>

#include "dsr_structs.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"

struct packet {
	struct ethhdr *eth;
	struct iphdr *ip;
	/* Where the IPv4 header ends, options included. */
	void *l4;
	struct flow_key flow;
	/* A TCP SYN opens a new connection, even on a 5-tuple the LRU still
	 * remembers from an earlier one. */
	bool tcp_syn;
	/* An ICMP error about flow, which is the quoted packet's flow seen
	 * from the client: it goes where flow's packets go, but is never
	 * answered with another ICMP error (RFC 1122 3.2.2). */
	bool icmp_error;
};

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
	return true;
}

/* Fills pkt->flow from a parsed IPv4 TCP or UDP packet (not a fragment)
 * with a complete L4 header. */
static __always_inline bool parse_flow(struct xdp_md *ctx, struct packet *pkt)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = pkt->ip;
	__u16 l4_len = bpf_ntohs(ip->tot_len) - ipv4_header_len(ip);

	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = pkt->l4;
		if ((void *)(tcp + 1) > data_end || l4_len < sizeof(*tcp))
			return false;
		pkt->flow.sport = tcp->source;
		pkt->flow.dport = tcp->dest;
		pkt->tcp_syn = bpf_ntohs(tcp->flags) & TCP_FLAG_SYN;
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = pkt->l4;
		if ((void *)(udp + 1) > data_end || l4_len < sizeof(*udp))
			return false;
		pkt->flow.sport = udp->source;
		pkt->flow.dport = udp->dest;
		break;
	}
	default:
		return false;
	}

	pkt->flow.src = ip->saddr;
	pkt->flow.dst = ip->daddr;
	pkt->flow.proto = ip->protocol;
	return true;
}

/* What an ICMP error quotes of the packet it is about. */
struct icmp_quote {
	struct iphdr *ip;
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
	__u32 icmp_len = bpf_ntohs(pkt->ip->tot_len) - ipv4_header_len(pkt->ip);
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

#endif /* __PCKT_PARSING_H */
