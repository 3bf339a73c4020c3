// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/* Reports packets the kernel drops in the lab's network namespaces, with
 * the kernel's own reason, and XDP programs that failed there
 * (XDP_ABORTED, an XDP_TX the peer could not take). Both tracepoints fire
 * for every namespace of the host: the netns inode numbers the user space
 * puts in lab_netns keep the others out before anything is copied. */

#include "kernel.h"
#include "bpf_helpers.h"

enum event_kind {
	EVENT_DROP = 1,
	EVENT_XDP_EXCEPTION = 2,
};

/* Enough for an IPv4 header, an IPIP inner one and the ports behind them. */
#define HEAD_BYTES 96

struct drop_event {
	__u64 location; /* kfree_skb's caller */
	__u32 kind;     /* enum event_kind */
	__u32 netns;
	__u32 ifindex;
	__u32 reason; /* enum skb_drop_reason, or the XDP action */
	__u32 prog_id;
	__u32 len;     /* the packet's length; 0 for XDP */
	__u32 head_len; /* bytes of data filled, from the network header */
	char prog_name[16];
	__u8 data[HEAD_BYTES];
};
/* Puts drop_event in the object's BTF for bpf2go's Go mirror: the ring
 * buffer carries no type of its own. */
const struct drop_event *unused_drop_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} lab_netns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} events SEC(".maps");

static __always_inline __u32 netns_of(struct net_device *dev, struct sock *sk)
{
	struct net *net = 0;
	/* A dropped skb has lost its device on some paths (socket receive
	 * queues); its socket still tells the namespace. */
	if (dev)
		net = dev->nd_net.net;
	else if (sk)
		net = sk->__sk_common.skc_net.net;
	return net ? net->ns.inum : 0;
}

SEC("tp_btf/kfree_skb")
int on_kfree_skb(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	struct net_device *dev = skb->dev;
	__u32 netns = netns_of(dev, skb->sk);

	if (!bpf_map_lookup_elem(&lab_netns, &netns))
		return 0;
	struct drop_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->kind = EVENT_DROP;
	e->location = ctx[1];
	e->reason = (__u32)ctx[2];
	e->netns = netns;
	e->ifindex = dev ? dev->ifindex : 0;
	e->prog_id = 0;
	e->prog_name[0] = 0;
	e->len = skb->len;
	e->head_len = 0;
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	/* (__u16)~0U: no network header was ever set. */
	if (head && nh != 0xffff &&
	    bpf_probe_read_kernel(e->data, sizeof(e->data), head + nh) == 0)
		e->head_len = sizeof(e->data);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/xdp_exception")
int on_xdp_exception(__u64 *ctx)
{
	struct net_device *dev = (struct net_device *)ctx[0];
	struct bpf_prog *prog = (struct bpf_prog *)ctx[1];
	__u32 netns = netns_of(dev, 0);

	if (!bpf_map_lookup_elem(&lab_netns, &netns))
		return 0;
	struct drop_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->kind = EVENT_XDP_EXCEPTION;
	e->location = 0;
	e->reason = (__u32)ctx[2];
	e->netns = netns;
	e->ifindex = dev->ifindex;
	e->len = 0;
	e->head_len = 0;
	struct bpf_prog_aux *aux = prog->aux;
	e->prog_id = aux->id;
	bpf_probe_read_kernel(e->prog_name, sizeof(e->prog_name), aux->name);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char _license[] SEC("license") = "Dual MIT/GPL";
