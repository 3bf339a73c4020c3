// xdp_bad reads the packet without a bounds check: the verifier rejects it,
// and its log names line 14. xdp_ok in the same object loads fine alone.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int xdp_bad(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	// No check against ctx->data_end before this read.
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int xdp_ok(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
