/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* The kernel UAPI a TC program needs beyond dsr_uapi.h: the __sk_buff
 * context (its leading fields, whose offsets are ABI), the TC verdicts
 * and bpf_skb_adjust_room's mode and flags. Values must match
 * include/uapi/linux/{bpf,pkt_cls}.h. */
#ifndef __TC_UAPI_H
#define __TC_UAPI_H

#include "dsr_uapi.h"

struct __sk_buff {
	__u32 len;
	__u32 pkt_type;
	__u32 mark;
	__u32 queue_mapping;
	__u32 protocol;
	__u32 vlan_present;
	__u32 vlan_tci;
	__u32 vlan_proto;
	__u32 priority;
	__u32 ingress_ifindex;
	__u32 ifindex;
	__u32 tc_index;
	__u32 cb[5];
	__u32 hash;
	__u32 tc_classid;
	__u32 data;
	__u32 data_end;
};

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

/* enum bpf_adj_room_mode */
#define BPF_ADJ_ROOM_MAC 1

#define BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 (1ULL << 1)
#define BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 (1ULL << 2)

#endif /* __TC_UAPI_H */
