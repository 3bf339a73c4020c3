/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* Limits, header constants and counter indices shared by the programs and,
 * through bpf2go's generated types, by the Go package. */
#ifndef __DSR_CONSTS_H
#define __DSR_CONSTS_H

/* Sizes every VIP-indexed map; the Go side allocates vip_num below it. */
#define MAX_VIPS 512
/* Fixed size of a VIP's real list so the fast path never loops over a
 * variable bound; a Maglev ring would replace the list, not this key. */
#define MAX_REALS_PER_VIP 16

/* The config array holds exactly one entry. */
#define CONFIG_KEY 0
#define CONFIG_ENTRIES 1

#define IPV4_VERSION 4
/* ihl counts 32-bit words: 5 words is a header without options. */
#define IPV4_IHL_NO_OPTIONS 5
#define IPV4_MAX_TOT_LEN 0xffff

/* Outer TTL: enough for any lab path, as Katran uses. */
#define IPIP_TTL 64

/* Folding a 32-bit one's-complement sum to 16 bits adds the carries above
 * the low half back into it. */
#define CSUM_CARRY_SHIFT 16
#define CSUM_LOW_MASK 0xffff

/* Seeds the flow hash so it differs from an upstream ECMP hash over the
 * same 5-tuple: flows that a hop before us split with the same function
 * would otherwise share hash bits and pile onto a few reals. */
#define FLOW_HASH_SEED 0x5f4d7c3b

/* Indices of the balancer's global_stats array. */
enum global_stat {
	STAT_PASSED,
	STAT_ENCAPSULATED,
	STAT_DROPPED,
	GLOBAL_STATS_MAX,
};

/* Indices of the decap program's decap_stats array. */
enum decap_stat {
	DECAP_STAT_DECAPSULATED,
	DECAP_STATS_MAX,
};

#endif /* __DSR_CONSTS_H */
