// The map idioms of Katran's balancer, small: a VIP key with an anonymous
// IPv4/IPv6 union and a plain __u16 port in network order, a MAC in a
// union beside a u64, a per-CPU LRU of LRUs (a map of maps filled by the
// loader, without its inner map in the BTF, and one that declares it), a big array that is mostly zero, and a ring buffer.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct vip_definition {
	union {
		__be32 vip;
		__be32 vipv6[4];
	};
	__u16 port;
	__u8 proto;
};

struct vip_meta {
	__u32 flags;
	__u32 vip_num;
};

struct ctl_value {
	union {
		__u64 value;
		__u32 ifindex;
		__u8 mac[6];
	};
};

struct flow_key {
	__be32 src;
	__be32 dst;
};

struct real_pos_lru {
	__u32 pos;
	__u64 atime;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, struct vip_definition);
	__type(value, struct vip_meta);
} vip_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct ctl_value);
} ctl_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1000);
	__type(key, struct flow_key);
	__type(value, struct real_pos_lru);
} fallback_cache SEC(".maps");

// As Katran declares it: no inner map in the BTF, its loader gives a
// prototype (an LRU shaped like fallback_cache).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} lru_mapping SEC(".maps");

// A map of maps that declares its inner maps.
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, 4);
		__type(key, __u32);
		__type(value, __u64);
	});
} per_vip SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 200000);
	__type(key, __u32);
	__type(value, __u32);
} server_id_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("xdp")
int xdp_katranish(struct xdp_md *ctx)
{
	struct vip_definition vip = {};
	__u32 zero = 0;
	struct flow_key flow = {};
	void *lru = bpf_map_lookup_elem(&lru_mapping, &zero);
	void *counters = bpf_map_lookup_elem(&per_vip, &zero);

	if (lru && bpf_map_lookup_elem(lru, &flow))
		return XDP_DROP;
	if (counters && bpf_map_lookup_elem(counters, &zero))
		return XDP_DROP;
	if (bpf_map_lookup_elem(&fallback_cache, &flow) || bpf_map_lookup_elem(&server_id_map, &zero))
		return XDP_DROP;
	if (bpf_map_lookup_elem(&vip_map, &vip) || bpf_map_lookup_elem(&ctl_array, &zero))
		return XDP_TX;
	bpf_ringbuf_output(&events, &zero, sizeof(zero), 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
