// A compile error at a known place: line 8, column 9 (the undeclared name).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_broken(struct xdp_md *ctx)
{
	return undeclared_verdict;
}

char LICENSE[] SEC("license") = "GPL";
