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
	struct flow_key flow;
	/* A TCP SYN opens a new connection, even on a 5-tuple the LRU still
	 * remembers from an earlier one. */
	bool tcp_syn;
};

/* Finds an option-less, unfragmented IPv4 header whose tot_len fits in the
 * frame. Options and fragments are rare enough to leave to the kernel, and
 * fragments other than the first carry no ports to hash on anyway. */
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
	if (ip->version != IPV4_VERSION || ip->ihl != IPV4_IHL_NO_OPTIONS)
		return false;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return false;

	/* Scalars, not packet pointers: the verifier caps pointer offsets. */
	__u32 l3_len = ctx->data_end - ctx->data - sizeof(*eth);
	__u16 tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < sizeof(*ip) || tot_len > l3_len)
		return false;

	pkt->eth = eth;
	pkt->ip = ip;
	return true;
}

/* Fills pkt->flow from an IPv4 TCP or UDP packet with a complete L4 header. */
static __always_inline bool parse_flow(struct xdp_md *ctx, struct packet *pkt)
{
	void *data_end = (void *)(long)ctx->data_end;

	if (!parse_ipv4(ctx, pkt))
		return false;

	struct iphdr *ip = pkt->ip;
	void *l4 = ip + 1;
	__u16 l4_len = bpf_ntohs(ip->tot_len) - sizeof(*ip);

	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > data_end || l4_len < sizeof(*tcp))
			return false;
		pkt->flow.sport = tcp->source;
		pkt->flow.dport = tcp->dest;
		pkt->tcp_syn = bpf_ntohs(tcp->flags) & TCP_FLAG_SYN;
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *udp = l4;
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

#endif /* __PCKT_PARSING_H */
