// TC programs for dsrlab test's own tests (run_test.go, tc-cases.yaml).
// tc_verdict returns the socket buffer's priority as its verdict, so that a
// case can ask for any TC action, adds one to its mark, and counts the
// packets it saw; tc_ttl sets an IPv4 packet's TTL to 1, its checksum kept
// right, and lets it go on.
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("tc")
int tc_verdict(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&seen, &zero);

	if (n)
		(*n)++;
	skb->mark = skb->mark + 1;
	return skb->priority;
}

#define TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))
#define CHECK_OFF (ETH_HLEN + offsetof(struct iphdr, check))

SEC("tc")
int tc_ttl(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__be16 old, new;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	/* TTL and protocol are one 16-bit word of the checksum. */
	old = *(__be16 *)&ip->ttl;
	new = bpf_htons(1 << 8 | ip->protocol);
	if (bpf_l3_csum_replace(skb, CHECK_OFF, old, new, sizeof(new)) ||
	    bpf_skb_store_bytes(skb, TTL_OFF, &new, sizeof(new), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
