// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/* xdp_balancer: the packet's life in order — parse, look up the VIP, pick a
 * real, encapsulate in IPIP, send back out of the interface it came in on.
 * The real decapsulates and answers the client directly (DSR). Anything that
 * is not a VIP packet goes to the kernel untouched. */

#include "dsr_uapi.h"
#include "dsr_consts.h"
#include "dsr_structs.h"
#include "balancer_maps.h"
#include "pckt_parsing.h"
#include "pckt_encap.h"
#include "jhash.h"
#include "bpf_helpers.h"

static __always_inline void count_global(enum global_stat stat)
{
	__u64 *packets = bpf_map_lookup_elem(&global_stats, &stat);
	if (packets)
		*packets += 1;
}

static __always_inline int pass(void)
{
	count_global(STAT_PASSED);
	return XDP_PASS;
}

static __always_inline void count_vip(__u32 vip_num, __u64 bytes)
{
	struct lb_counters *c = bpf_map_lookup_elem(&vip_stats, &vip_num);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

/* The selection step: stateless, so every packet of a flow reaches the same
 * real for as long as the VIP's real list is unchanged. */
static __always_inline bool pick_real(const struct vip_meta *vip, const struct flow_key *flow,
				      __be32 *real)
{
	__u32 vip_num = vip->vip_num;
	const struct real_list *reals = bpf_map_lookup_elem(&vip_reals, &vip_num);
	if (!reals || reals->count == 0)
		return false;

	__u32 hash = jhash_3words(flow->src, flow->dst, flow->ports, FLOW_HASH_SEED ^ flow->proto);
	__u32 slot = hash % reals->count;
	/* count comes from a map, so only this check bounds the index for the
	 * verifier. */
	if (slot >= MAX_REALS_PER_VIP)
		return false;
	*real = reals->addrs[slot];
	return true;
}

SEC("xdp")
int xdp_balancer(struct xdp_md *ctx)
{
	struct packet pkt = {};
	if (!parse_flow(ctx, &pkt))
		return pass();

	struct vip_key key = {
		.addr = pkt.flow.dst,
		.port = pkt.flow.dport,
		.proto = pkt.flow.proto,
	};
	const struct vip_meta *vip = bpf_map_lookup_elem(&vips, &key);
	if (!vip)
		return pass();

	__u32 config_key = CONFIG_KEY;
	const struct lb_config *cfg = bpf_map_lookup_elem(&config, &config_key);
	if (!cfg || !cfg->src_addr)
		return pass();

	/* Only a packet this close to the IPv4 limit (a generic-XDP GRO
	 * packet) cannot take another header; the kernel may still segment it. */
	if (bpf_ntohs(pkt.ip->tot_len) > IPV4_MAX_TOT_LEN - sizeof(struct iphdr))
		return pass();

	__be32 real;
	if (!pick_real(vip, &pkt.flow, &real))
		return pass();

	count_vip(vip->vip_num, ctx->data_end - ctx->data);
	if (!ipip_encap(ctx, &pkt, cfg, real)) {
		count_global(STAT_DROPPED);
		return XDP_DROP;
	}
	count_global(STAT_ENCAPSULATED);
	return XDP_TX;
}

char _license[] SEC("license") = "Dual MIT/GPL";
