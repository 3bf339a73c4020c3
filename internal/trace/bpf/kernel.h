/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The handful of kernel types the drop tracer reads, declared by hand
 * instead of a generated vmlinux.h: only the fields used, each struct
 * marked preserve_access_index so that the loader (CO-RE) finds the
 * field's real offset in the running kernel's BTF, whatever the layout
 * and however deep the field sits in anonymous unions there.
 */
#ifndef __TRACE_KERNEL_H
#define __TRACE_KERNEL_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
/* bpf_helper_defs.h names these in helpers this program does not call. */
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_RINGBUF 27

#define CORE __attribute__((preserve_access_index))

struct ns_common {
	unsigned int inum;
} CORE;

struct net {
	struct ns_common ns;
} CORE;

typedef struct {
	struct net *net;
} CORE possible_net_t;

struct net_device {
	int ifindex;
	possible_net_t nd_net;
} CORE;

struct sock_common {
	possible_net_t skc_net;
} CORE;

struct sock {
	struct sock_common __sk_common;
} CORE;

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	unsigned int len;
	unsigned char *head;
	__u16 network_header;
} CORE;

struct bpf_prog_aux {
	__u32 id;
	char name[16];
} CORE;

struct bpf_prog {
	struct bpf_prog_aux *aux;
} CORE;

#endif
