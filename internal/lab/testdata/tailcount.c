// A user's program that reaches its counter by a tail call through a
// program array the topology fills; without the entry, it counts nothing.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} jmp SEC(".maps");

const volatile __u32 slot = 0;

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&frames, &key);

	if (n)
		(*n)++;
	return XDP_PASS;
}

SEC("xdp")
int xdp_entry(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jmp, slot);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
