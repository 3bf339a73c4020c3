// Compiles only with the flags a Katran-style build passes: a -D define, a
// header found through -I, and glibc's <stdint.h> (which needs the empty
// gnu/stubs-32.h dsrlab ships, under -target bpf).
#include <stdint.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef RING_SIZE
#error RING_SIZE is not defined: the cflags did not reach clang
#endif

#include "consts.h"

SEC("xdp")
int xdp_flags(struct xdp_md *ctx)
{
	uint32_t ring = RING_SIZE;
	return ring > 1 ? VERDICT : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
