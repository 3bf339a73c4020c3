/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* Limits, header constants and counter indices shared by the programs and,
 * through bpf2go's generated types, by the Go package. */
#ifndef __DSR_CONSTS_H
#define __DSR_CONSTS_H

/* Sizes every VIP-indexed map; the Go side allocates vip_num below it.
 * The Maglev rings dominate the memory: 64 rings of RING_SIZE 4-byte slots
 * are 16 MiB of kernel memory, affordable on a lab host (Katran's 512 VIPs
 * would take 128 MiB). */
#define MAX_VIPS 64

/* Entries of one VIP's Maglev ring: prime, so every permutation of the ring
 * visits each entry, and ~100x the largest real set a VIP may have, which
 * Maglev needs for an even spread. Must equal maglev.RingSize. */
#define RING_SIZE 65537

/* Real slots, shared by all VIPs: one slot per (VIP, real) pair, so a
 * slot's generation can say "this real left this VIP" without touching
 * other VIPs served by the same address. */
#define MAX_REALS 4096
/* Slot 0 is never assigned, so an all-zero ring entry or LRU value (what
 * another CPU's half of a per-CPU LRU entry holds) names no real. */
#define NO_REAL_SLOT 0

/* CPUs whose copies of the connection table a packet may consult (see
 * balancer.h, other_cpus_real): the bound the verifier needs for the loop
 * over them. The loop stops earlier, at the possible CPUs Go puts in
 * lb_config; a host with more CPUs than this does not search the rest. */
#define MAX_CPUS 256

/* Flows remembered by default; Go may resize the map before loading. */
#define DEFAULT_LRU_SIZE 65536

/* The config array holds exactly one entry. */
#define CONFIG_KEY 0
#define CONFIG_ENTRIES 1

#define IPV4_VERSION 4
/* ihl counts 32-bit words: 5 words is a header without options. */
#define IPV4_IHL_NO_OPTIONS 5
#define IPV4_MAX_TOT_LEN 0xffff

/* TTL of the packets the balancer originates (outer IPIP headers, ICMP
 * errors): enough for any lab path, as Katran uses. */
#define ORIGIN_TTL 64

/* An ICMP error quotes the offending IP header and the first 64 bits of
 * its payload (RFC 792): enough for the client to find its socket. */
#define ICMP_QUOTED_L4_LEN 8

/* Folding a 32-bit one's-complement sum to 16 bits adds the carries above
 * the low half back into it. */
#define CSUM_CARRY_SHIFT 16
#define CSUM_LOW_MASK 0xffff

/* Seeds the flow hash so it differs from an upstream ECMP hash over the
 * same 5-tuple: flows that a hop before us split with the same function
 * would otherwise share hash bits and pile onto a few reals. */
#define FLOW_HASH_SEED 0x5f4d7c3b

/* Indices of the balancer's global_stats array. Every packet is counted in
 * exactly one of the first four; LRU hits, remote LRU hits and misses split
 * the VIP packets a real was looked up for. */
enum global_stat {
	STAT_PASSED,
	STAT_ENCAPSULATED,
	STAT_DROPPED,
	STAT_TOO_BIG,
	STAT_LRU_HIT,
	STAT_LRU_MISS,
	/* Found in another CPU's copy of the connection table, not this
	 * CPU's: the flow's packets moved CPU (veth, no RSS). */
	STAT_LRU_REMOTE_HIT,
	GLOBAL_STATS_MAX,
};

/* Indices of the decap program's decap_stats array. */
enum decap_stat {
	DECAP_STAT_DECAPSULATED,
	DECAP_STATS_MAX,
};

#endif /* __DSR_CONSTS_H */
