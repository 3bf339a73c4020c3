/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The few kernel UAPI definitions the dsrlab programs use, restated here so
 * that `clang -target bpf` needs neither kernel nor libc headers: Debian keeps
 * asm/types.h under a multiarch directory the BPF target does not search.
 * Values are ABI and must match include/uapi/linux/{bpf,if_ether,in,ip}.h.
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

#define IPPROTO_ICMP 1
#define IPPROTO_IPIP 4
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

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
