// One XDP program (beside a tc one) using a per-CPU array, a hash, a map whose name the
// kernel truncates, and a global in .rodata, so that all of them are among
// the program's map IDs.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct counters {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __be32);
	__type(value, __u32);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} a_rather_long_map_name SEC(".maps");

const volatile __u32 verdict = XDP_PASS;

SEC("xdp")
int xdp_maps(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__be32 addr = 0;
	struct counters *c = bpf_map_lookup_elem(&stats, &zero);
	if (c)
		c->packets++;
	if (bpf_map_lookup_elem(&backends, &addr) || bpf_map_lookup_elem(&a_rather_long_map_name, &zero))
		return XDP_DROP;
	return verdict;
}

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
