// Globals a user configures from the topology instead of a map: a constant
// struct and verdict in .rodata, a limit in .data and a counter in .bss.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct config {
	__be32 vip;
	__u8 mac[6];
	__u16 port;
};

const volatile struct config cfg = {};
const volatile __u32 verdict = XDP_PASS;
__u32 limit = 1000;
__u64 seen;

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	if (++seen > limit)
		return XDP_ABORTED;
	if (cfg.vip == bpf_htonl(0xc0a80a01) && cfg.mac[5] == 0x0b && cfg.port == 50007)
		return XDP_TX;
	return verdict;
}

char _license[] SEC("license") = "GPL";
