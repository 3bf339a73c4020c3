// Programs that run as long as the kernel lets them: one tail-calls itself
// until the kernel stops the chain (33 calls) and then returns a value that
// is no XDP action; the other loops the most times bpf_loop allows.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} self SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} runs SEC(".maps");

SEC("xdp")
int xdp_tail_forever(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&runs, &zero);

	if (n)
		(*n)++;
	bpf_tail_call(ctx, &self, 0);
	return 42; /* once the kernel refuses another tail call */
}

static long spin(__u64 i, void *ctx)
{
	return 0;
}

SEC("xdp")
int xdp_loop_max(struct xdp_md *ctx)
{
	bpf_loop(1 << 23, spin, 0, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
