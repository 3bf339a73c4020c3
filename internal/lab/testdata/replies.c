// A TC egress program on a real: counts the IPv4 packets it sends, by
// destination (the client a DSR reply goes back to), and passes them on.
// A TC ingress program in the same object drops TCP to a port given in a
// global, and passes the rest.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __be32);  /* the client */
	__type(value, __u64); /* packets sent to it */
} replies SEC(".maps");

const volatile __u16 blocked_port = 0;

static struct iphdr *ipv4(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	return ip;
}

SEC("tc")
int tc_count_replies(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4(skb);
	__u64 one = 1, *n;
	__be32 dst;

	if (!ip)
		return TC_ACT_OK;
	dst = ip->daddr;
	n = bpf_map_lookup_elem(&replies, &dst);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&replies, &dst, &one, BPF_NOEXIST);
	return TC_ACT_OK;
}

SEC("tc")
int tc_drop_port(struct __sk_buff *skb)
{
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = ipv4(skb);
	struct tcphdr *tcp;

	if (!ip || ip->protocol != IPPROTO_TCP || ip->ihl != 5)
		return TC_ACT_OK;
	tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > end)
		return TC_ACT_OK;
	return tcp->dest == bpf_htons(blocked_port) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
