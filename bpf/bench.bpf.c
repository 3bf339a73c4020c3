// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/* xdp_balancer_bench: a benchmark harness, loaded only by the Go tests. It
 * runs the balancer's pipeline and then undoes the encapsulation, so that
 * BPF_PROG_TEST_RUN with repeat > 1 hands every iteration the same packet
 * (the kernel does not reset it between iterations: DESIGN.md pitfall 7)
 * and measures the pipeline warm, as traffic would run it. The undo is
 * part of the figure, so the figure is an upper bound. */

#include "balancer.h"

SEC("xdp")
int xdp_balancer_bench(struct xdp_md *ctx)
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

	if (bpf_xdp_adjust_head(ctx, sizeof(struct iphdr)))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	*eth = orig;
	return verdict;
}

char _license[] SEC("license") = "Dual MIT/GPL";
