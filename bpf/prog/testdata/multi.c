// Two XDP programs, a tc one, and maps of every description Encode meets.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct cfg {
	__be32 addr;
	__u16 weight;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cfg);
} cfg SEC(".maps");

// Sizes only, no BTF types: entries cannot be written by field name.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__uint(key_size, 4);
	__uint(value_size, 4);
} raw SEC(".maps");

SEC("xdp")
int xdp_a(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct cfg *c = bpf_map_lookup_elem(&cfg, &zero);
	if (c && bpf_map_lookup_elem(&raw, &zero))
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int xdp_b(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int tc_prog(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
