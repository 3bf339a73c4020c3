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
	/* At most about a thousand words are summed (an ICMPv6 error quoting
	 * 1232 bytes), so the sum carries a few bits; two folds absorb the
	 * carry that the first fold can produce. */
	sum = (sum & CSUM_LOW_MASK) + (sum >> CSUM_CARRY_SHIFT);
	sum = (sum & CSUM_LOW_MASK) + (sum >> CSUM_CARRY_SHIFT);
	return ~sum;
}

/* Updates a checksum for one 16-bit word of what it covers changing from
 * old to new, as RFC 1624 (eqn. 3) does: HC' = ~(~HC + ~m + m'). Both
 * words as they sit in memory, like the checksum. */
static __always_inline void csum_replace16(__sum16 *csum, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~*csum + (__u16)~old + new;
	*csum = csum_fold(sum);
}

static __always_inline __sum16 ipv4_csum(const struct iphdr *ip)
{
	return csum_fold(csum_words(ip, sizeof(*ip)));
}

#endif /* __CSUM_H */
