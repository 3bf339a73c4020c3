// Tail calls through a program array that the loader fills, as libbpf
// loaders do with bpf_map_update_elem: without an entry, the call falls
// through.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jmp SEC(".maps");

SEC("xdp")
int xdp_drop_everything(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int xdp_main(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jmp, 0);
	return XDP_PASS;
}

SEC("tc")
int tc_other(struct __sk_buff *skb)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
