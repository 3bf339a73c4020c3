/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* The Internet checksum (RFC 1071) over headers the programs write. */
#ifndef __CSUM_H
#define __CSUM_H

#include "dsr_uapi.h"
#include "dsr_consts.h"

/* One's-complement sum of len bytes at p as 16-bit words. len is a
 * compile-time constant at every call, so the loop unrolls; the caller has
 * checked that p..p+len lies in the packet. */
static __always_inline __u32 csum_words(const void *p, const unsigned int len)
{
	const __u16 *word = p;
	__u32 sum = 0;

#pragma unroll
	for (unsigned int i = 0; i < len / sizeof(*word); i++)
		sum += word[i];
	return sum;
}

static __always_inline __sum16 csum_fold(__u32 sum)
{
	/* The headers summed are a few dozen words, so the sum carries a few
	 * bits; two folds absorb the carry that the first fold can produce. */
	sum = (sum & CSUM_LOW_MASK) + (sum >> CSUM_CARRY_SHIFT);
	sum = (sum & CSUM_LOW_MASK) + (sum >> CSUM_CARRY_SHIFT);
	return ~sum;
}

static __always_inline __sum16 ipv4_csum(const struct iphdr *ip)
{
	return csum_fold(csum_words(ip, sizeof(*ip)));
}

#endif /* __CSUM_H */
