// A map pinned by name, as libbpf-based projects declare the maps their
// tools read from /sys/fs/bpf.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dsrlab_test_pinned SEC(".maps");

SEC("xdp")
int xdp_pinned(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&dsrlab_test_pinned, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
