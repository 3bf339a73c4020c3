// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/* tc_healthcheck: runs on TC egress of a katran's uplink, as Katran's
 * healthchecking.bpf.c does. A health check's socket carries a mark (SO_MARK)
 * naming one real; for a mark in hc_tunnels the packet is encapsulated the
 * way the balancer encapsulates VIP traffic to that real (IPIP, ip6ip6 or
 * 4in6, from the katran's uplink address), so the check reaches the VIP on
 * the real's lo through its decapsulation and fails when either is broken.
 * The real answers from the VIP straight to the katran's address. Every
 * other packet passes untouched. */

#include <stdbool.h>

#include "dsr_uapi.h"
#include "dsr_consts.h"
#include "tc_uapi.h"
#include "addr.h"
#include "csum.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"

/* Where a mark's checks go: the outer source (the katran's uplink address
 * of dst's family) and destination (the real's tunnel address), in the
 * 16-byte form; an IPv4-mapped dst means an outer IPv4 header. */
struct hc_tunnel {
	__be32 src[ADDR_WORDS];
	__be32 dst[ADDR_WORDS];
};

/* Every real of the largest lab (topology.MaxNodes), one mark per family. */
#define MAX_HC_TUNNELS 8192

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct hc_tunnel);
	__uint(max_entries, MAX_HC_TUNNELS);
} hc_tunnels SEC(".maps");

#define ETH_HLEN sizeof(struct ethhdr)
#define ETH_PROTO_OFF __builtin_offsetof(struct ethhdr, h_proto)

/* The inner packet's DSCP and ECN, which the outer header carries on as
 * the balancer's encapsulation does, and its length from its own header
 * (what follows it in the frame, if anything, is not part of it). */
static __always_inline int inner_header(struct __sk_buff *skb, bool inner6, __u8 *tclass, __u32 *len)
{
	__u8 b[6];
	if (bpf_skb_load_bytes(skb, ETH_HLEN, b, sizeof(b)))
		return -1;
	if (inner6) {
		*tclass = b[0] << 4 | b[1] >> 4;
		*len = sizeof(struct ipv6hdr) + (b[4] << 8 | b[5]);
	} else {
		*tclass = b[1];
		*len = b[2] << 8 | b[3];
	}
	return 0;
}

static __always_inline int encap_ipv4(struct __sk_buff *skb, const struct hc_tunnel *t, __u8 tos, __u32 inner_len)
{
	struct iphdr outer = {
		.version = IPV4_VERSION,
		.ihl = IPV4_IHL_NO_OPTIONS,
		.tos = tos,
		.tot_len = bpf_htons(inner_len + sizeof(outer)),
		/* DF, as the balancer's IPIP (pckt_encap.h says why). */
		.frag_off = bpf_htons(IP_DF),
		.ttl = ORIGIN_TTL,
		.protocol = IPPROTO_IPIP,
		.saddr = t->src[ADDR_V4_WORD],
		.daddr = t->dst[ADDR_V4_WORD],
	};
	outer.check = ipv4_csum(&outer);
	if (bpf_skb_adjust_room(skb, sizeof(outer), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4))
		return -1;
	return bpf_skb_store_bytes(skb, ETH_HLEN, &outer, sizeof(outer), 0);
}

static __always_inline int encap_ipv6(struct __sk_buff *skb, const struct hc_tunnel *t, bool inner6, __u8 tclass,
				      __u32 inner_len)
{
	struct ipv6hdr outer = {
		.version = IPV6_VERSION,
		.priority = tclass >> 4,
		.flow_lbl = {(tclass & 0xf) << 4},
		.payload_len = bpf_htons(inner_len),
		.nexthdr = inner6 ? IPPROTO_IPV6 : IPPROTO_IPIP,
		.hop_limit = ORIGIN_TTL,
	};
	addr_copy(outer.saddr, t->src);
	addr_copy(outer.daddr, t->dst);
	if (bpf_skb_adjust_room(skb, sizeof(outer), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6))
		return -1;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &outer, sizeof(outer), 0))
		return -1;
	/* 4in6: the frame now carries IPv6. */
	__be16 proto = bpf_htons(ETH_P_IPV6);
	return inner6 ? 0 : bpf_skb_store_bytes(skb, ETH_PROTO_OFF, &proto, sizeof(proto), 0);
}

SEC("tc")
int tc_healthcheck(struct __sk_buff *skb)
{
	__u32 mark = skb->mark;
	if (!mark)
		return TC_ACT_OK;
	struct hc_tunnel *t = bpf_map_lookup_elem(&hc_tunnels, &mark);
	if (!t)
		return TC_ACT_OK;

	bool inner6;
	if (skb->protocol == bpf_htons(ETH_P_IP))
		inner6 = false;
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		inner6 = true;
	else
		return TC_ACT_OK;
	bool outer4 = addr_is_v4(t->dst);
	__u8 tclass;
	__u32 inner_len;
	/* A marked check that cannot be carried to its real is dropped, not
	 * sent plain: plain, it would be routed to the VIP's balancers and
	 * test one of them instead of the real. IPv6 inside IPv4 is never
	 * configured. */
	if ((outer4 && inner6) || inner_header(skb, inner6, &tclass, &inner_len))
		return TC_ACT_SHOT;
	int err = outer4 ? encap_ipv4(skb, t, tclass, inner_len) : encap_ipv6(skb, t, inner6, tclass, inner_len);
	return err ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "Dual MIT/GPL";
