// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/* xdp_pass: attached to the veth peer of an interface that does native
 * XDP_TX. A veth only delivers XDP frames to a peer that runs XDP itself;
 * without a program there, every transmitted frame is dropped. */

#include "dsr_uapi.h"
#include "bpf_helpers.h"

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
