// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/* xdp_balancer_bench: a benchmark harness, loaded only by the Go tests. It
 * runs the balancer's pipeline and then undoes the encapsulation, so that
 * BPF_PROG_TEST_RUN with repeat > 1 hands every iteration the same packet
 * (the kernel does not reset it between iterations: DESIGN.md pitfall 7)
 * and measures the pipeline warm, as traffic would run it. The undo is
 * part of the figure, so the figure is an upper bound. */

#include "balancer.h"

static __always_inline int balance_and_undo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	struct ethhdr orig = *eth;

	int verdict = balance(ctx);
	if (verdict != XDP_TX)
		return verdict;

	/* The outer header's family is the frame's now. */
	int outer_len = frame_ethertype(ctx) == bpf_htons(ETH_P_IPV6) ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	if (bpf_xdp_adjust_head(ctx, outer_len))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	*eth = orig;
	return verdict;
}

SEC("xdp")
int xdp_balancer_bench(struct xdp_md *ctx)
{
	return balance_and_undo(ctx);
}

/* xdp_balancer_bench_remote: the same, after making this CPU forget the
 * flow (its copy of the LRU entry zeroed), so that every iteration finds
 * the flow only in another CPU's copy and copies it back here: the remote
 * hit of a flow whose packets moved CPU. The forgetting (a parse, a lookup
 * and a store) is part of the figure too. */
SEC("xdp")
int xdp_balancer_bench_remote(struct xdp_md *ctx)
{
	struct packet pkt = {};
	if (parse_ip(ctx, &pkt) >= 0 || !parse_flow(ctx, &pkt))
		return XDP_ABORTED;
	struct flow_pin *local = bpf_map_lookup_elem(&lru_flows, &pkt.flow);
	if (!local)
		return XDP_ABORTED;
	local->slot = NO_REAL_SLOT;
	local->gen = 0;
	return balance_and_undo(ctx);
}

char _license[] SEC("license") = "Dual MIT/GPL";
