/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* The 16-byte address form of the maps (dsr_structs.h): IPv6 as is, IPv4
 * mapped. */
#ifndef __ADDR_H
#define __ADDR_H

#include <stdbool.h>

#include "dsr_uapi.h"
#include "dsr_consts.h"
#include "bpf_endian.h"
#include "bpf_helpers.h"

#define ADDR_WORDS 4
/* The word an IPv4 address takes in the mapped form. */
#define ADDR_V4_WORD 3

static __always_inline void addr_from_v4(__be32 addr[ADDR_WORDS], __be32 v4)
{
	addr[0] = 0;
	addr[1] = 0;
	addr[2] = bpf_htonl(IPV4_MAPPED_WORD);
	addr[ADDR_V4_WORD] = v4;
}

static __always_inline bool addr_is_v4(const __be32 addr[ADDR_WORDS])
{
	return !addr[0] && !addr[1] && addr[2] == bpf_htonl(IPV4_MAPPED_WORD);
}

static __always_inline bool addr_is_zero(const __be32 addr[ADDR_WORDS])
{
	return !(addr[0] | addr[1] | addr[2] | addr[3]);
}

static __always_inline bool addr_equal(const __be32 a[ADDR_WORDS], const __be32 b[ADDR_WORDS])
{
	return !((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]));
}

static __always_inline void addr_copy(__be32 dst[ADDR_WORDS], const __be32 src[ADDR_WORDS])
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
}

/* The address's bit in the VIP address filter (dsr_structs.h): its words
 * folded into 32 bits and those into 16, so that the last bytes of an
 * address, where VIPs of one subnet differ, pick the bit. Go computes the
 * same on the same words (addrFilterBit). */
static __always_inline __u32 addr_filter_bit(const __be32 addr[ADDR_WORDS])
{
	__u32 fold = addr[0] ^ addr[1] ^ addr[2] ^ addr[3];
	return (fold ^ fold >> 16) & (ADDR_FILTER_BITS - 1);
}

#endif /* __ADDR_H */
