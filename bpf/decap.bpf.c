// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/* xdp_decap: runs on a real. Strips the outer header of IPIP packets sent to
 * one of our addresses so the kernel sees the client->VIP packet, for
 * kernels without an ipip tunnel device. Everything else passes untouched. */

#include "dsr_uapi.h"
#include "dsr_consts.h"
#include "decap_maps.h"
#include "pckt_parsing.h"
#include "pckt_encap.h"
#include "bpf_helpers.h"

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	struct packet pkt = {};
	if (!parse_ipv4(ctx, &pkt))
		return XDP_PASS;
	/* ipip_decap strips a fixed-size header; and a fragment is only part
	 * of the inner packet. */
	if (pkt.ip->protocol != IPPROTO_IPIP || ipv4_has_options(pkt.ip) || ipv4_is_fragment(pkt.ip))
		return XDP_PASS;
	if (!bpf_map_lookup_elem(&decap_dsts, &pkt.ip->daddr))
		return XDP_PASS;

	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *inner = (void *)(pkt.ip + 1);
	if ((void *)(inner + 1) > data_end)
		return XDP_PASS;

	if (!ipip_decap(ctx, &pkt))
		return XDP_ABORTED;

	enum decap_stat stat = DECAP_STAT_DECAPSULATED;
	__u64 *packets = bpf_map_lookup_elem(&decap_stats, &stat);
	if (packets)
		*packets += 1;
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
