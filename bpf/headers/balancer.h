/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* The balancer's pipeline, in the packet's order: parse (IPv4 or IPv6),
 * pass a packet for no VIP address (one read of the address filter), pick
 * a real (the flow's remembered real, from this CPU's copy of the table or
 * another's; else, once the VIP is looked up, its Maglev ring), check
 * that the encapsulated packet fits the path to that real, encapsulate by
 * the real's family (IPIP to IPv4, ip6ip6 or 4in6 to IPv6), send back out
 * of the interface it came in on. ICMP and ICMPv6 to a VIP address take a
 * side road first: echo requests are answered, errors about a VIP flow
 * join the pipeline as that flow. A header, not the program, so the
 * benchmark's harness program runs the very same code. */
#ifndef __BALANCER_H
#define __BALANCER_H

#include "dsr_uapi.h"
#include "dsr_consts.h"
#include "dsr_structs.h"
#include "addr.h"
#include "balancer_maps.h"
#include "pckt_parsing.h"
#include "pckt_encap.h"
#include "pckt_icmp.h"
#include "jhash.h"
#include "bpf_helpers.h"

static __always_inline void count_global(enum global_stat stat)
{
	__u64 *packets = bpf_map_lookup_elem(&global_stats, &stat);
	if (packets)
		*packets += 1;
}

static __always_inline int pass(void)
{
	count_global(STAT_PASSED);
	return XDP_PASS;
}

static __always_inline int drop(void)
{
	count_global(STAT_DROPPED);
	return XDP_DROP;
}

/* A drop whose reason has a counter of its own, besides STAT_DROPPED. */
static __always_inline int drop_for(enum global_stat reason)
{
	count_global(reason);
	return drop();
}

/* A pass whose reason has a counter of its own, besides STAT_PASSED. */
static __always_inline int pass_for(enum global_stat reason)
{
	count_global(reason);
	return pass();
}

/* False: no VIP has addr. True: some VIP may have it; the lookups that
 * follow say which, if any. */
static __always_inline bool may_be_vip_addr(const __be32 addr[ADDR_WORDS])
{
	__u32 key = ADDR_FILTER_KEY;
	const struct addr_filter *filter = bpf_map_lookup_elem(&vip_addr_filter, &key);
	if (!filter)
		return true;
	__u32 bit = addr_filter_bit(addr);
	return filter->words[bit / ADDR_FILTER_WORD_BITS] & (1ULL << (bit % ADDR_FILTER_WORD_BITS));
}

static __always_inline bool is_vip_addr(const __be32 addr[ADDR_WORDS])
{
	return may_be_vip_addr(addr) && bpf_map_lookup_elem(&vip_addrs, addr);
}

static __always_inline void count_traffic(void *counters, __u32 index, __u64 bytes)
{
	struct lb_counters *c = bpf_map_lookup_elem(counters, &index);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

/* In generic XDP the program can see a GRO aggregate: client packets the
 * kernel merged, longer than the ingress link carries. No client sent a
 * packet that size, so there is nobody to tell; the aggregate goes on
 * whole. Only a packet that fits the ingress MTU is one the client sent. */
static __always_inline bool sent_as_one_packet(struct xdp_md *ctx, __u32 l3_len)
{
	/* Input: the L3 length to check, instead of the frame's. */
	__u32 mtu_len = l3_len;
	return bpf_check_mtu(ctx, 0, &mtu_len, 0, 0) == BPF_MTU_CHK_RET_SUCCESS;
}

/* The largest packet the path to real carries: its own path MTU, or the
 * uplink's, or less if a router on the way said so. */
static __always_inline __u16 real_path_mtu(const struct real_def *real, const struct lb_config *cfg)
{
	__u16 mtu = real->path_mtu ? real->path_mtu : cfg->path_mtu;
	__u16 learned = real->learned_mtu;
	/* The clock is read only for a real some router reported about. */
	if (!learned || learned >= mtu || bpf_ktime_get_coarse_ns() - real->learned_at > PMTU_EXPIRES_NS)
		return mtu;
	return learned;
}

/* A VIP packet whose encapsulation would not fit the path to its real:
 * the client is told mtu, the largest packet that fits once encapsulated. */
static __always_inline int too_big(struct xdp_md *ctx, const struct packet *pkt, __u16 mtu)
{
	/* An ICMP error is never answered with another. */
	if (pkt->icmp_error)
		return drop_for(STAT_DROP_TOO_BIG);
	bool told;
	if (pkt->ipv6) {
		/* IPv6 never fragments on the way: the sender always wants
		 * to know. It may not be told less than the IPv6 minimum
		 * (RFC 8201 4); on a path that small the packet is lost. */
		told = icmp6_too_big(ctx, pkt, mtu < IPV6_MIN_MTU ? IPV6_MIN_MTU : mtu);
	} else {
		/* Without DF the client allows routers to fragment, which
		 * XDP cannot do, and the kernel here does not own the VIP:
		 * drop, as Katran does. */
		if (!(pkt->ip->frag_off & bpf_htons(IP_DF)))
			return drop_for(STAT_DROP_TOO_BIG);
		told = icmp_too_big(ctx, pkt, mtu);
	}
	if (!told)
		return drop();
	count_global(STAT_TOO_BIG);
	return XDP_TX;
}

/* The real a pin names, if the real is still the one the pin was made
 * for: a slot freed since (the real was removed from the VIP) has a new
 * generation, and a zero pin (this CPU never saw the flow, or a SYN made
 * it forget) names NO_REAL_SLOT, whose address is 0. A drained real keeps
 * its address and generation, so its flows stay. */
static __always_inline const struct real_def *pinned_real(const struct flow_pin *pin, __u32 *slot)
{
	__u32 pinned = pin->slot;
	__u32 gen = pin->gen;
	const struct real_def *real = bpf_map_lookup_elem(&reals, &pinned);
	if (!real || addr_is_zero(real->addr) || real->gen != gen)
		return NULL;
	*slot = pinned;
	return real;
}

/* What a walk over the other CPUs' copies of a flow's LRU entry works on;
 * the loop's callback sees it through a pointer. */
struct cpu_walk {
	struct flow_key flow;
	__u32 this_cpu;
	/* other_cpus_real's answer: a pin to a valid real, or all zero. */
	struct flow_pin found;
};

/* The walks below run under bpf_loop, bounded by MAX_CPUS and stopped at
 * the possible CPUs. Not an open-coded loop: the verifier would walk that
 * once per iteration, MAX_CPUS times, and every exit from it down the rest
 * of the pipeline as often (130k instructions verified with MAX_CPUS 256,
 * against 1.7k this way); a callback it verifies once. The kernel inlines bpf_loop into a
 * plain loop calling the callback. A callback returns 0 to go on to the
 * next CPU, 1 to stop. */
static __always_inline __u32 cpus_to_walk(__u32 possible_cpus)
{
	return possible_cpus < MAX_CPUS ? possible_cpus : MAX_CPUS;
}

static long find_on_cpu(__u64 index, void *data)
{
	struct cpu_walk *walk = data;
	__u32 cpu = index;
	if (cpu == walk->this_cpu)
		return 0;
	const struct flow_pin *remote = bpf_map_lookup_percpu_elem(&lru_flows, &walk->flow, cpu);
	/* One element holds every CPU's copy: if it is gone (evicted since
	 * the local lookup), no CPU has the flow. */
	if (!remote)
		return 1;
	struct flow_pin pin = *remote;
	__u32 ignored;
	if (pin.slot == NO_REAL_SLOT || !pinned_real(&pin, &ignored))
		return 0;
	walk->found = pin;
	return 1;
}

/* The flow has an entry in the table but not a valid one for this CPU:
 * its packets ran on another CPU before. On a NIC, RSS keeps a flow on one
 * CPU; on veth a packet runs on whichever CPU its sender ran on, so a long
 * connection moves between CPUs, and missing here would hand it to the
 * ring, which no longer has a drained real: the connection would break.
 * So look in the other CPUs' copies (one hash lookup each) and, on a valid
 * pin, copy it into this CPU's, so the flow's next packets here hit
 * locally. Only such a miss pays for this; the hit path is unchanged. */
static __always_inline const struct real_def *other_cpus_real(const struct flow_key *flow, struct flow_pin *local,
							       __u32 possible_cpus, __u32 *slot)
{
	struct cpu_walk walk = {.flow = *flow, .this_cpu = bpf_get_smp_processor_id()};
	bpf_loop(cpus_to_walk(possible_cpus), find_on_cpu, &walk, 0);
	if (walk.found.slot == NO_REAL_SLOT)
		return NULL;
	/* Again, for the pointer: the callback can only hand back a value.
	 * An array lookup, which the kernel inlines. */
	const struct real_def *real = pinned_real(&walk.found, slot);
	if (real)
		/* In place, through the local lookup's pointer: the element
		 * exists, and an update would take the bucket lock and an LRU
		 * node for nothing. */
		*local = walk.found;
	return real;
}

static long forget_on_cpu(__u64 index, void *data)
{
	struct cpu_walk *walk = data;
	__u32 cpu = index;
	if (cpu == walk->this_cpu)
		return 0;
	struct flow_pin *remote = bpf_map_lookup_percpu_elem(&lru_flows, &walk->flow, cpu);
	/* No element: evicted since the local lookup found it; no CPU
	 * remembers the 5-tuple now. */
	if (!remote)
		return 1;
	/* Only write a copy that names a real: no needless store to another
	 * CPU's cache line. */
	if (remote->slot != NO_REAL_SLOT) {
		remote->slot = NO_REAL_SLOT;
		remote->gen = 0;
	}
	return 0;
}

/* A SYN opens a new connection on its 5-tuple, so what other CPUs
 * remember of it is the previous connection's real: left there, their
 * copy would send the new connection's packets that run on those CPUs
 * back to the old real (a local hit there, or other_cpus_real from a
 * third CPU). Zero them; the SYN's own CPU then records the ring's choice,
 * which other_cpus_real finds from anywhere. */
static __always_inline void forget_on_other_cpus(const struct flow_key *flow, __u32 possible_cpus)
{
	struct cpu_walk walk = {.flow = *flow, .this_cpu = bpf_get_smp_processor_id()};
	bpf_loop(cpus_to_walk(possible_cpus), forget_on_cpu, &walk, 0);
}

/* An address as one word of the flow hash: an IPv4 address is itself, so
 * IPv4 flows hash as they always have; an IPv6 one is folded by two rounds
 * of the mix, so every one of its bits counts. */
static __always_inline __u32 addr_hash_word(const __be32 addr[ADDR_WORDS])
{
	if (addr_is_v4(addr))
		return addr[ADDR_V4_WORD];
	return jhash_3words(addr[2], addr[3], jhash_3words(addr[0], addr[1], 0, 0), 0);
}

/* The owner of the flow's entry in the VIP's Maglev ring, remembered in
 * the LRU for the flow's later packets: in local, this CPU's copy of the
 * flow's element if the table has one, else in a new element. */
static __always_inline const struct real_def *hashed_real(const struct vip_meta *vip, const struct flow_key *flow,
							  struct flow_pin *local, __u32 *slot)
{
	__u32 vip_num = vip->vip_num;
	const struct ch_ring *ring = bpf_map_lookup_elem(&ch_rings, &vip_num);
	if (!ring)
		return NULL;

	/* The LRU remembers the flow itself; the VIP's hash mode only
	 * decides which of its fields pick the real of a flow it does not
	 * know. */
	__u32 src = addr_hash_word(flow->src);
	struct l4_ports ports = {.source = flow->sport, .dest = flow->dport};
	switch (vip->hash) {
	case VIP_HASH_DST_PORT_ONLY:
		src = 0;
		/* fallthrough */
	case VIP_HASH_NO_SRC_PORT:
		ports.source = 0;
		break;
	case VIP_HASH_FIVE_TUPLE:
		break;
	}
	__u32 ports_word;
	__builtin_memcpy(&ports_word, &ports, sizeof(ports_word));
	__u32 entry =
		jhash_3words(src, addr_hash_word(flow->dst), ports_word, FLOW_HASH_SEED ^ flow->proto) % RING_SIZE;
	/* The verifier does not carry the modulo's bound, and clang would
	 * drop a check it can prove redundant; the empty asm hides the value
	 * from clang so the check stays for the verifier. */
	asm volatile("" : "+r"(entry));
	if (entry >= RING_SIZE)
		return NULL;

	__u32 owner = ring->slots[entry];
	const struct real_def *real = bpf_map_lookup_elem(&reals, &owner);
	/* NO_REAL_SLOT: every real of the VIP is drained. A zero address
	 * also covers a slot freed while this packet read the old ring. */
	if (!real || addr_is_zero(real->addr))
		return NULL;

	/* Either way only this CPU's copy is written; other CPUs find it
	 * through other_cpus_real. In place, as there: an update would take
	 * the bucket lock and an LRU node for nothing. If the update fails
	 * (it does not for an LRU map) the next packet hashes again, to the
	 * same real while the ring is unchanged. */
	struct flow_pin pin = {.slot = owner, .gen = real->gen};
	if (local)
		*local = pin;
	else
		bpf_map_update_elem(&lru_flows, flow, &pin, BPF_ANY);
	*slot = owner;
	return real;
}

/* The real the connection table remembers for the flow, from this CPU's
 * copy or another's; NULL for a flow it does not know and for a TCP SYN,
 * which opens a new connection even on a 5-tuple the table still
 * remembers. local is set to this CPU's copy of the flow's element, or
 * NULL if the table has none. Looked up before the flow's VIP: a
 * remembered real names its VIP (real_def.vip_num), and its slot's
 * generation says the VIP still has it, so an established flow costs no
 * VIP lookup. */
static __always_inline const struct real_def *remembered_real(const struct packet *pkt, const struct lb_config *cfg,
							      struct flow_pin **local, __u32 *slot)
{
	struct flow_pin *pin = bpf_map_lookup_elem(&lru_flows, &pkt->flow);
	*local = pin;
	/* No element at all: no CPU has seen the flow, so there is no other
	 * copy to search. */
	if (!pin || pkt->tcp_syn)
		return NULL;
	const struct real_def *real = pinned_real(pin, slot);
	if (real) {
		count_global(STAT_LRU_HIT);
		return real;
	}
	real = other_cpus_real(&pkt->flow, pin, cfg->possible_cpus, slot);
	if (real)
		count_global(STAT_LRU_REMOTE_HIT);
	return real;
}

/* The real for a flow of vip the connection table does not remember: the
 * ring's choice, remembered from now on (in local, this CPU's copy of the
 * flow's element, if there is one). A SYN reopening a 5-tuple the table
 * holds first makes other CPUs forget what they remember of it. Same
 * 5-tuple, same real: the table keeps an established flow on its real
 * when the ring changes, whichever CPU its packets run on. */
static __always_inline const struct real_def *new_flow_real(const struct vip_meta *vip, const struct packet *pkt,
							    const struct lb_config *cfg, struct flow_pin *local,
							    __u32 *slot)
{
	if (pkt->tcp_syn && local)
		forget_on_other_cpus(&pkt->flow, cfg->possible_cpus);
	count_global(STAT_LRU_MISS);
	return hashed_real(vip, &pkt->flow, local, slot);
}

/* The VIP serving the flow: one for its very port, else one for every
 * port of its address. */
static __always_inline const struct vip_meta *lookup_vip(const struct flow_key *flow)
{
	struct vip_key key = {
		.port = flow->dport,
		.proto = flow->proto,
	};
	addr_copy(key.addr, flow->dst);
	const struct vip_meta *vip = bpf_map_lookup_elem(&vips, &key);
	if (vip)
		return vip;
	key.port = VIP_ANY_PORT;
	return bpf_map_lookup_elem(&vips, &key);
}

/* The outer header towards a real of that family. */
static __always_inline __u32 outer_header_len(bool real_is_v6)
{
	return real_is_v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
}

/* Sends a packet of pkt->flow to the flow's real, if the flow is a VIP's. */
static __always_inline int balance_flow(struct xdp_md *ctx, const struct packet *pkt)
{
	__u32 config_key = CONFIG_KEY;
	const struct lb_config *cfg = bpf_map_lookup_elem(&config, &config_key);
	if (!cfg || (!cfg->src_addr && addr_is_zero(cfg->src_addr6)))
		return pass();

	__u32 slot;
	struct flow_pin *local;
	const struct real_def *real = remembered_real(pkt, cfg, &local, &slot);
	if (!real) {
		const struct vip_meta *vip = lookup_vip(&pkt->flow);
		if (!vip)
			return pass();
		real = new_flow_real(vip, pkt, cfg, local, &slot);
		if (!real)
			return drop();
	}
	/* The VIP's number, as the slot records it. */
	__u32 vip_num = real->vip_num;

	if (pkt->ip_options)
		count_global(STAT_IP_OPTIONS);
	bool real_is_v6 = !addr_is_v4(real->addr);
	/* 6in4 is not offered (Go refuses an IPv4 real for an IPv6 VIP, as
	 * Katran has no such encapsulation); a real of a family without a
	 * source address is not configured yet. */
	if (pkt->ipv6 && !real_is_v6)
		return drop();
	if (real_is_v6 ? addr_is_zero(cfg->src_addr6) : !cfg->src_addr)
		return pass();
	/* Only a packet this close to the limit of the outer length field (a
	 * generic-XDP GRO aggregate) cannot take another header; the kernel
	 * may still segment it. */
	__u32 outer_len = outer_header_len(real_is_v6);
	if (pkt->l3_len > (real_is_v6 ? IPV6_MAX_PAYLOAD_LEN : IPV4_MAX_TOT_LEN - outer_len))
		return pass();

	/* What is sent is the whole frame behind an outer header, bytes
	 * after the IP length (Ethernet padding, trailers) included, unless
	 * they alone would make it too big: they are no part of the packet
	 * (the real's kernel trims them), so they are cut instead. Too
	 * big is the packet's length, never its frame's: an ICMP error
	 * quotes the packet, and a packet too big for the path is longer
	 * than any quote. */
	__u32 frame_l3_len = ctx->data_end - ctx->data - sizeof(struct ethhdr);
	__u32 trailer = 0;
	__u16 path_mtu = real_path_mtu(real, cfg);
	if (frame_l3_len + outer_len > path_mtu) {
		if (pkt->l3_len + outer_len <= path_mtu)
			trailer = frame_l3_len - pkt->l3_len;
		else if (sent_as_one_packet(ctx, pkt->l3_len))
			return too_big(ctx, pkt, path_mtu - outer_len);
	}

	__be32 real_addr[ADDR_WORDS];
	addr_copy(real_addr, real->addr);
	__u64 bytes = sizeof(struct ethhdr) + frame_l3_len - trailer;
	count_traffic(&vip_stats, vip_num, bytes);
	count_traffic(&real_stats, slot, bytes);
	bool sent = real_is_v6 ? ip6_encap(ctx, pkt, cfg, real_addr, trailer)
			       : ipip_encap(ctx, pkt, cfg, real_addr[ADDR_V4_WORD], trailer);
	if (!sent)
		return drop();
	count_global(STAT_ENCAPSULATED);
	if (pkt->icmp_error)
		count_global(STAT_ICMP_FORWARDED);
	return XDP_TX;
}

/* What a walk over the real slots lowering one real's path MTU works on. */
struct mtu_walk {
	__be32 real[ADDR_WORDS];
	__u64 now;
	__u16 mtu;
};

/* A report lowers the path MTU, or confirms it and so keeps it; a higher
 * one counts only once the learned one has expired, as in the kernel. */
static long lower_slot_mtu(__u64 index, void *data)
{
	const struct mtu_walk *walk = data;
	__u32 slot = index;
	struct real_def *def = bpf_map_lookup_elem(&reals, &slot);
	if (!def)
		return 1;
	if (!addr_equal(def->addr, walk->real))
		return 0;
	if (!def->learned_mtu || walk->mtu <= def->learned_mtu || walk->now - def->learned_at > PMTU_EXPIRES_NS) {
		def->learned_mtu = walk->mtu;
		def->learned_at = walk->now;
	}
	return 0;
}

/* Lowers the path MTU of every slot of real to mtu, raised to floor (a
 * smaller report is a router's mistake or a lie). A walk over every slot
 * is costly but as rare as such reports, which are passed on to the
 * kernel, whose address they are addressed to. */
static __always_inline int lower_path_mtu(const __be32 real[ADDR_WORDS], __u32 mtu, __u16 floor)
{
	/* 0: a router from before RFC 1191, which names no MTU. */
	if (!mtu)
		return pass();
	struct mtu_walk walk = {
		.now = bpf_ktime_get_coarse_ns(),
		.mtu = mtu < floor ? floor : (mtu > IPV4_MAX_TOT_LEN ? IPV4_MAX_TOT_LEN : mtu),
	};
	addr_copy(walk.real, real);
	bpf_loop(MAX_REALS, lower_slot_mtu, &walk, 0);
	count_global(STAT_PATH_MTU_LOWERED);
	return pass();
}

/* Outer packets carry DF (pckt_encap.h), so a router whose next hop to a
 * real is smaller than we thought drops them and reports frag-needed to
 * our own address, quoting our outer header. Lower the path MTU of that
 * real; the client's next big packet to it is then answered with
 * frag-needed at the smaller size. */
static __always_inline int lower_path_mtu4(const struct packet *pkt, const struct icmphdr *icmp,
					   const struct iphdr *quoted)
{
	__u32 config_key = CONFIG_KEY;
	const struct lb_config *cfg = bpf_map_lookup_elem(&config, &config_key);
	if (!cfg || !cfg->src_addr || icmp->code != ICMP_FRAG_NEEDED)
		return pass();
	if (pkt->ip->daddr != cfg->src_addr || quoted->saddr != cfg->src_addr)
		return pass();
	__be32 real[ADDR_WORDS];
	addr_from_v4(real, quoted->daddr);
	return lower_path_mtu(real, bpf_ntohs(icmp->un.frag.mtu), MIN_PATH_MTU);
}

/* lower_path_mtu4 for our ip6ip6 and 4in6 packets: Packet Too Big to our
 * IPv6 address, quoting our outer header. */
static __always_inline int lower_path_mtu6(const struct packet *pkt, const struct icmp6hdr *icmp,
					   const struct ipv6hdr *quoted)
{
	__u32 config_key = CONFIG_KEY;
	const struct lb_config *cfg = bpf_map_lookup_elem(&config, &config_key);
	if (!cfg || addr_is_zero(cfg->src_addr6) || icmp->type != ICMPV6_PKT_TOOBIG)
		return pass();
	if (!addr_equal(pkt->flow.dst, cfg->src_addr6) || !addr_equal(quoted->saddr, cfg->src_addr6))
		return pass();
	__be32 real[ADDR_WORDS];
	addr_copy(real, quoted->daddr);
	return lower_path_mtu(real, bpf_ntohl(icmp->un.mtu), IPV6_MIN_MTU);
}

/* An ICMP error about a packet a real sent from the VIP (a reply, in DSR)
 * is that flow's business: it goes to the flow's real like the flow's own
 * packets, found from the quoted ports with source and destination
 * swapped. The caller has checked the quote is of a TCP or UDP packet from
 * the VIP address the error is addressed to. */
static __always_inline int forward_icmp_error(struct xdp_md *ctx, struct packet *pkt, const __be32 quoted_dst[ADDR_WORDS],
					      const struct l4_ports *ports, __u8 proto)
{
	addr_copy(pkt->flow.src, quoted_dst);
	/* flow.dst, the error's destination, is the quoted source. */
	pkt->flow.sport = ports->dest;
	pkt->flow.dport = ports->source;
	pkt->flow.proto = proto;
	pkt->icmp_error = true;
	return balance_flow(ctx, pkt);
}

static __always_inline bool is_l4_balanced(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP;
}

/* ICMP to a VIP address: an echo request is answered here, since the
 * kernel behind us does not own the VIP. An error about a VIP flow goes
 * to the flow's real (forward_icmp_error). ICMP to our own address about
 * an encapsulated packet lowers a real's path MTU. Anything else goes to
 * the kernel. */
static __always_inline int handle_icmp(struct xdp_md *ctx, struct packet *pkt)
{
	struct icmp_quote quote = {};
	struct icmphdr *icmp = parse_icmp(ctx, pkt, &quote);
	if (!icmp)
		return pass();

	if (icmp->type == ICMP_ECHO) {
		if (!is_vip_addr(pkt->flow.dst))
			return pass();
		icmp_echo_reply(ctx, pkt, icmp);
		count_global(STAT_ECHO_REPLIED);
		return XDP_TX;
	}
	if (!quote.ports)
		return pass();
	const struct iphdr *quoted = quote.ip;
	if (quoted->protocol == IPPROTO_IPIP)
		return lower_path_mtu4(pkt, icmp, quoted);
	/* The error must be addressed to the quoted packet's sender, and the
	 * quote carry ports: only a first fragment (or none) does. */
	if (quoted->saddr != pkt->ip->daddr || (quoted->frag_off & bpf_htons(IP_OFFSET)))
		return pass();
	if (!is_l4_balanced(quoted->protocol))
		return pass();
	__be32 quoted_dst[ADDR_WORDS];
	addr_from_v4(quoted_dst, quoted->daddr);
	return forward_icmp_error(ctx, pkt, quoted_dst, quote.ports, quoted->protocol);
}

/* handle_icmp for ICMPv6. Neighbour discovery and everything else not
 * about a VIP goes to the kernel. */
static __always_inline int handle_icmp6(struct xdp_md *ctx, struct packet *pkt)
{
	struct icmp_quote quote = {};
	struct icmp6hdr *icmp = parse_icmp6(ctx, pkt, &quote);
	if (!icmp)
		return pass();

	if (icmp->type == ICMPV6_ECHO_REQUEST) {
		if (!is_vip_addr(pkt->flow.dst))
			return pass();
		icmp6_echo_reply(pkt, icmp);
		count_global(STAT_ECHO_REPLIED);
		return XDP_TX;
	}
	if (!quote.ports)
		return pass();
	const struct ipv6hdr *quoted = quote.ip6;
	if (quoted->nexthdr == IPPROTO_IPV6 || quoted->nexthdr == IPPROTO_IPIP)
		return lower_path_mtu6(pkt, icmp, quoted);
	if (!addr_equal(quoted->saddr, pkt->flow.dst) || !is_l4_balanced(quoted->nexthdr))
		return pass();
	return forward_icmp_error(ctx, pkt, quoted->daddr, quote.ports, quoted->nexthdr);
}

/* Parses the frame's IP header, of either family; what it returns is the
 * verdict for a frame that does not parse (XDP_PASS, counted), or -1 to go
 * on. */
static __always_inline int parse_ip(struct xdp_md *ctx, struct packet *pkt)
{
	if (frame_ethertype(ctx) == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(ctx, pkt) ? -1 : pass_for(STAT_IPV6_MALFORMED);
	return parse_ipv4(ctx, pkt) ? -1 : pass();
}

static __always_inline int balance(struct xdp_md *ctx)
{
	struct packet pkt = {};
	int verdict = parse_ip(ctx, &pkt);
	if (verdict >= 0)
		return verdict;
	/* Only a first fragment has ports, and no fragment can be balanced
	 * on its own: its siblings may hash elsewhere or carry nothing to
	 * hash. The kernel here does not own a VIP to reassemble for. */
	if (pkt.fragment)
		return is_vip_addr(pkt.flow.dst) ? drop_for(STAT_DROP_FRAGMENT) : pass();
	if (!pkt.ipv6 && pkt.flow.proto == IPPROTO_ICMP)
		return handle_icmp(ctx, &pkt);
	if (pkt.ipv6 && pkt.flow.proto == IPPROTO_ICMPV6)
		return handle_icmp6(ctx, &pkt);
	/* Anything else is a VIP's only if it is for a VIP address: the
	 * filter passes nearly every other packet before any lookup. */
	if (!may_be_vip_addr(pkt.flow.dst))
		return pass();
	if (!parse_flow(ctx, &pkt))
		return pass();
	return balance_flow(ctx, &pkt);
}

#endif /* __BALANCER_H */
