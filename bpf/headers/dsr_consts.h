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

/* Bits of the VIP address filter (dsr_structs.h, addr_filter): with at
 * most MAX_VIPS addresses in it, a packet for any other address finds its
 * bit clear at least 98% of the time. A power of two, so the bit is a
 * mask of the address's fold. */
#define ADDR_FILTER_BITS 4096
#define ADDR_FILTER_WORD_BITS 64
/* The filter's array holds exactly one entry. */
#define ADDR_FILTER_KEY 0
#define ADDR_FILTER_ENTRIES 1

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

#define IPV6_VERSION 6
/* Every IPv6 link carries this much (RFC 8200 5); the least path MTU an
 * IPv6 real may have, and the least a router's Packet Too Big may set. */
#define IPV6_MIN_MTU 1280
/* payload_len is 16 bits; a jumbogram (RFC 2675) never fits a frame. */
#define IPV6_MAX_PAYLOAD_LEN 0xffff
/* Extension headers skipped before giving up on a packet: the bound the
 * verifier needs for the walk. Real traffic has none or one; a chain this
 * long is passed to the kernel and counted. */
#define IPV6_MAX_EXT_HEADERS 4
/* hdrlen of an extension header counts 8-byte units after the first 8. */
#define IPV6_EXT_UNIT 8
/* Network-order word 2 of an IPv4-mapped IPv6 address (::ffff:a.b.c.d,
 * RFC 4291 2.5.5.2): the form IPv4 addresses take in the 16-byte keys,
 * so one key type holds both families. Never on the wire in IPv6. */
#define IPV4_MAPPED_WORD 0x0000ffff

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
/* ICMPv6 errors quote as much as fits in the minimum IPv6 MTU (RFC 4443
 * 2.4 c): 1280 minus the reply's IPv6 and ICMPv6 headers. A packet too big
 * for a path to an IPv6 real (at least IPV6_MIN_MTU) is longer than that
 * minus the 40-byte outer header, so always has this much. */
#define ICMP6_QUOTE_LEN (IPV6_MIN_MTU - 40 - 8)

/* The smallest path MTU the balancer works with (Go's MinPathMTU): the MTU
 * it advertises, path MTU minus the outer header, is then at least IPv4's
 * minimum of 68 (RFC 791). A smaller MTU reported by a router is raised to
 * it. */
#define MIN_PATH_MTU (68 + 20)
/* How long a path MTU a router reported holds: the kernel's default
 * net.ipv4.route.mtu_expires, 10 minutes. */
#define PMTU_EXPIRES_NS (600ULL * 1000000000ULL)

/* Folding a 32-bit one's-complement sum to 16 bits adds the carries above
 * the low half back into it. */
#define CSUM_CARRY_SHIFT 16
#define CSUM_LOW_MASK 0xffff
/* The checksum of data that is all zero: the complement of a zero sum. */
#define CSUM_OF_ZEROS 0xffff

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
	/* Of the VIP packets given a real: those with IPv4 options or IPv6
	 * extension headers, balanced like any. */
	STAT_IP_OPTIONS,
	/* Of STAT_DROPPED: fragments (IPv4 or IPv6) to a VIP address. */
	STAT_DROP_FRAGMENT,
	/* Of STAT_DROPPED: too big for the real's path, and not to be
	 * answered with ICMP (no DF, or itself an ICMP error). */
	STAT_DROP_TOO_BIG,
	/* Of STAT_PASSED: ICMP frag-needed (or ICMPv6 Packet Too Big) for an
	 * encapsulated packet, which lowered the path MTU of its real. */
	STAT_PATH_MTU_LOWERED,
	/* Of STAT_PASSED: IPv6 packets whose headers do not parse: truncated,
	 * a payload length past the frame, an extension header past the
	 * payload, a chain longer than IPV6_MAX_EXT_HEADERS, or an
	 * IPv4-mapped destination. */
	STAT_IPV6_MALFORMED,
	GLOBAL_STATS_MAX,
};

/* Indices of the decap program's decap_stats array. */
enum decap_stat {
	DECAP_STAT_DECAPSULATED,
	DECAP_STATS_MAX,
};

#endif /* __DSR_CONSTS_H */
