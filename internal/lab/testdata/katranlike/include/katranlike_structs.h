/* Katran's map layouts (balancer_structs.h), small: what makes its maps
 * hard to fill and read by hand. */
#ifndef KATRANLIKE_STRUCTS_H
#define KATRANLIKE_STRUCTS_H

#include <stdint.h> /* through glibc: needs the empty gnu/stubs-32.h dsrlab ships */
#include <linux/types.h>

/* A VIP: an IPv4 or IPv6 address in one union, and a port kept in network
 * order in a plain __u16. */
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

struct real_definition {
	union {
		__be32 dst;
		__be32 dstv6[4];
	};
	__u8 flags;
};

/* A MAC, an ifindex or a number, by index of ctl_array. */
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
	__u16 port16[2];
	__u8 proto;
};

struct real_pos_lru {
	__u32 pos;
	uint64_t atime;
};

#endif
