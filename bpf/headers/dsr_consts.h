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
/* ihl is 4 bits: at most 15 words, 40 bytes of options. */
#define IPV4_MAX_HEADER_LEN 60
#define IPV4_IHL_WORD 4
#define IPV4_MAX_TOT_LEN 0xffff

/* TTL of the packets the balancer originates (outer IPIP headers, ICMP
 * errors): enough for any lab path, as Katran uses. */
#define ORIGIN_TTL 64

/* An ICMP error quotes the start of the offending packet. RFC 1812 4.3.2.3
 * asks for as much as fits in a 576-byte datagram: 576 minus the reply's
 * IPv4 and ICMP headers. A packet shorter than that (only on paths below
 * ~570 bytes) gets the least a host can match to its socket whatever the
 * header: the largest IPv4 header plus the 64 bits RFC 792 requires. Every
 * too-big packet has at least that much: it is longer than MIN_PATH_MTU
 * minus the outer header. Both even, for the 16-bit checksum. */
#define ICMP_QUOTE_MAX_LEN (576 - 20 - 8)
#define ICMP_QUOTE_MIN_LEN (IPV4_MAX_HEADER_LEN + 8)

/* The smallest path MTU the balancer works with (Go's MinPathMTU): the MTU
 * it advertises, path MTU minus the outer header, is then at least IPv4's
 * minimum of 68 (RFC 791). A smaller MTU reported by a router is raised to
 * it. */
#define MIN_PATH_MTU (68 + 20)

/* Folding a 32-bit one's-complement sum to 16 bits adds the carries above
 * the low half back into it. */
#define CSUM_CARRY_SHIFT 16
#define CSUM_LOW_MASK 0xffff

/* Seeds the flow hash so it differs from an upstream ECMP hash over the
 * same 5-tuple: flows that a hop before us split with the same function
 * would otherwise share hash bits and pile onto a few reals. */
#define FLOW_HASH_SEED 0x5f4d7c3b

/* How a VIP hashes new flows onto its ring (vip_meta.hash). The
 * connection table always remembers each 5-tuple: the mode only decides
 * which real a flow it does not know yet gets. */
enum vip_hash {
	/* Source and destination address and port. */
	VIP_HASH_FIVE_TUPLE,
	/* Without the source port: every connection of a client goes to the
	 * same real (while the ring is unchanged). */
	VIP_HASH_NO_SRC_PORT,
	/* Destination address and port only: every client of a port goes to
	 * the same real. */
	VIP_HASH_DST_PORT_ONLY,
};

/* A VIP whose port is this serves every port of its address and protocol
 * that no VIP names exactly. */
#define VIP_ANY_PORT 0

/* Indices of the balancer's global_stats array. Every packet is counted in
 * exactly one of STAT_PASSED, STAT_ENCAPSULATED, STAT_DROPPED,
 * STAT_TOO_BIG and STAT_ECHO_REPLIED; LRU hits, remote LRU hits and misses
 * split the VIP packets a real was looked up for; the rest say more about
 * packets already counted in one of the five. */
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
	/* ICMP echo requests to a VIP address, answered (XDP_TX). */
	STAT_ECHO_REPLIED,
	/* Of STAT_ENCAPSULATED: ICMP errors about a VIP flow, sent to the
	 * flow's real. */
	STAT_ICMP_FORWARDED,
	/* Of the VIP packets: those with IPv4 options, balanced like any. */
	STAT_IP_OPTIONS,
	/* Of STAT_DROPPED: fragments to a VIP address. */
	STAT_DROP_FRAGMENT,
	/* Of STAT_DROPPED: too big for the real's path, and not to be
	 * answered with ICMP (no DF, or itself an ICMP error). */
	STAT_DROP_TOO_BIG,
	/* Of STAT_PASSED: ICMP frag-needed for an encapsulated packet, which
	 * lowered the path MTU of its real. */
	STAT_PATH_MTU_LOWERED,
	GLOBAL_STATS_MAX,
};

/* Indices of the decap program's decap_stats array. */
enum decap_stat {
	DECAP_STAT_DECAPSULATED,
	DECAP_STATS_MAX,
};

#endif /* __DSR_CONSTS_H */
