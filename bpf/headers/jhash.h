/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* Bob Jenkins' lookup3 final mix (public domain) in the shape of the
 * kernel's jhash_3words: every input bit affects every output bit, so flows
 * spread evenly over reals even when clients differ only in the source port.
 * The rotation amounts are part of the algorithm. */
#ifndef __JHASH_H
#define __JHASH_H

#include "dsr_uapi.h"

#define JHASH_INITVAL 0xdeadbeef
#define JHASH_WORD_BITS 32

static __always_inline __u32 rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> (JHASH_WORD_BITS - shift));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += JHASH_INITVAL + initval;
	b += JHASH_INITVAL + initval;
	c += JHASH_INITVAL + initval;

	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

#endif /* __JHASH_H */
