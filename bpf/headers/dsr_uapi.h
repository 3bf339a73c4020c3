/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The few kernel UAPI definitions the dsrlab programs use, restated here so
 * that `clang -target bpf` needs neither kernel nor libc headers: Debian keeps
 * asm/types.h under a multiarch directory the BPF target does not search.
 * Values are ABI and must match include/uapi/linux/{bpf,if_ether,in,in6,ip,ipv6,icmpv6}.h.
 */
#ifndef __DSR_UAPI_H
#define __DSR_UAPI_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;

typedef __u16 __be16;
typedef __u32 __be32;
typedef __u16 __sum16;
typedef __u32 __wsum;

/* Map types (enum bpf_map_type). */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_PERCPU_HASH 10

/* bpf_map_update_elem flags. */
#define BPF_ANY 0

/* bpf_check_mtu results (enum bpf_check_mtu_ret). */
#define BPF_MTU_CHK_RET_SUCCESS 0

/* enum xdp_action */
enum xdp_action {
	XDP_ABORTED = 0,
	XDP_DROP,
	XDP_PASS,
	XDP_TX,
};

/* The XDP program context; offsets are fixed by the kernel. */
struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

#define ETH_ALEN 6
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

struct ethhdr {
	__u8 h_dest[ETH_ALEN];
	__u8 h_source[ETH_ALEN];
	__be16 h_proto;
} __attribute__((packed));

/* The kernel's iphdr with the version/ihl bitfield spelled for little endian,
 * the only byte order bpf2go is asked to build (-target bpfel). */
struct iphdr {
	__u8 ihl : 4, version : 4;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__sum16 check;
	__be32 saddr;
	__be32 daddr;
};

#define IP_MF 0x2000
#define IP_DF 0x4000
#define IP_OFFSET 0x1fff

#define IPPROTO_HOPOPTS 0
#define IPPROTO_ICMP 1
#define IPPROTO_IPIP 4
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_IPV6 41
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60

/* The kernel's ipv6hdr, bitfield spelled for little endian like iphdr's;
 * addresses as four big-endian words, the form every map key uses. */
struct ipv6hdr {
	__u8 priority : 4, version : 4;
	__u8 flow_lbl[3];
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__be32 saddr[4];
	__be32 daddr[4];
};

/* The start every hop-by-hop, routing and destination options header
 * shares: its length counts 8-byte units after the first 8 bytes. */
struct ipv6_opt_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

/* The routing header's fixed part; segments_left counts the hops still to
 * visit after the destination address. */
struct ipv6_rt_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
	__u8 type;
	__u8 segments_left;
};

struct frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* frag_hdr.frag_off: offset in 8-byte units, two reserved bits, M. */
#define IP6_OFFSET 0xfff8
#define IP6_MF 0x0001

/* Only the fixed 20-byte part; options are not parsed. */
struct tcphdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	/* Data offset, reserved bits and flags; TCP_FLAG_* test it after
	 * bpf_ntohs. */
	__be16 flags;
	__be16 window;
	__sum16 check;
	__be16 urg_ptr;
};

#define TCP_FLAG_SYN 0x0002

struct udphdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__sum16 check;
};

/* The 8-byte ICMP header; the last four bytes depend on the type. */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	union {
		struct {
			__be16 id;
			__be16 sequence;
		} echo;
		struct {
			__be16 unused;
			__be16 mtu;
		} frag;
	} un;
};

/* ICMPv6 (RFC 4443) has the same 8-byte shape. */
struct icmp6hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	union {
		struct {
			__be16 id;
			__be16 sequence;
		} echo;
		__be32 mtu;
	} un;
};

#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_FRAG_NEEDED 4

/* The first four bytes of TCP and UDP alike: all an ICMP error is sure to
 * quote of them (RFC 792 guarantees 8 bytes, TCP's header is 20). */
struct l4_ports {
	__be16 source;
	__be16 dest;
};

#endif /* __DSR_UAPI_H */
