// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/* xdp_balancer: IPIP Direct Server Return. VIP packets are encapsulated
 * to a real and sent back out of the interface they came in on; the real
 * decapsulates and answers the client directly. Pings to a VIP address are
 * answered here, ICMP errors about a VIP flow follow the flow to its real,
 * fragments to a VIP address are dropped. Anything else that is not a VIP
 * packet goes to the kernel untouched. The pipeline is in balancer.h. */

#include "balancer.h"

SEC("xdp")
int xdp_balancer(struct xdp_md *ctx)
{
	return balance(ctx);
}

char _license[] SEC("license") = "Dual MIT/GPL";
