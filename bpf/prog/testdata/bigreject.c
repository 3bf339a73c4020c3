// A rejection after well over traceLimit instructions processed: a bounded
// loop the verifier walks iteration by iteration, then an unchecked packet
// read.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_big(struct xdp_md *ctx)
{
	__u32 sum = 0;

#pragma clang loop unroll(disable)
	for (int i = 0; i < 20000; i++)
		sum += bpf_get_prandom_u32() & i;
	if (sum == 7)
		return XDP_DROP;
	return *(__u8 *)(long)ctx->data;
}

char LICENSE[] SEC("license") = "GPL";
