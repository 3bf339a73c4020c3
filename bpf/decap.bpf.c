// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/* xdp_decap: runs on a real. Strips the outer header of packets the
 * balancer encapsulated to one of our addresses — IPIP, ip6ip6 and 4in6 —
 * so the kernel sees the client->VIP packet, for kernels without a tunnel
 * device. Everything else passes untouched. */

#include "dsr_uapi.h"
#include "dsr_consts.h"
#include "decap_maps.h"
#include "pckt_parsing.h"
#include "pckt_encap.h"
#include "bpf_helpers.h"

/* The inner packet's EtherType for an outer header's next protocol, or 0
 * for one this program does not decapsulate (6in4 included: the balancer
 * never sends it). */
static __always_inline __be16 inner_ethertype(const struct packet *pkt)
{
	if (pkt->flow.proto == IPPROTO_IPIP)
		return bpf_htons(ETH_P_IP);
	if (pkt->ipv6 && pkt->flow.proto == IPPROTO_IPV6)
		return bpf_htons(ETH_P_IPV6);
	return 0;
}

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	struct packet pkt = {};
	bool parsed = frame_ethertype(ctx) == bpf_htons(ETH_P_IPV6) ? parse_ipv6(ctx, &pkt) : parse_ipv4(ctx, &pkt);
	if (!parsed)
		return XDP_PASS;
	/* decap strips a fixed-size header; and a fragment is only part of
	 * the inner packet. */
	if (pkt.ip_options || pkt.fragment)
		return XDP_PASS;
	__be16 inner = inner_ethertype(&pkt);
	if (!inner || !bpf_map_lookup_elem(&decap_dsts, pkt.flow.dst))
		return XDP_PASS;

	/* At least an inner IPv4 header's worth, the smaller of the two: the
	 * kernel judges the rest of the inner packet. */
	void *data_end = (void *)(long)ctx->data_end;
	if (pkt.l4 + sizeof(struct iphdr) > data_end || pkt.l4_len < sizeof(struct iphdr))
		return XDP_PASS;

	bool ok = pkt.ipv6 ? decap(ctx, &pkt, sizeof(struct ipv6hdr), inner) : decap(ctx, &pkt, sizeof(struct iphdr), inner);
	if (!ok)
		return XDP_ABORTED;

	enum decap_stat stat = DECAP_STAT_DECAPSULATED;
	__u64 *packets = bpf_map_lookup_elem(&decap_stats, &stat);
	if (packets)
		*packets += 1;
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
