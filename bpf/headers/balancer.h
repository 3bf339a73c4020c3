/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* The balancer's pipeline, in the packet's order: parse, look up the VIP,
 * pick a real (the flow's remembered real, from this CPU's copy of the
 * table or another's, else the VIP's Maglev ring), check that the
 * encapsulated packet fits the path to that real, encapsulate in IPIP,
 * send back out of the interface it came in on. ICMP to a VIP address
 * takes a side road first: echo requests are answered, errors about a VIP
 * flow join the pipeline as that flow. A header, not the program, so the
 * benchmark's harness program runs the very same code. */
#ifndef __BALANCER_H
#define __BALANCER_H

#include "dsr_uapi.h"
#include "dsr_consts.h"
#include "dsr_structs.h"
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

static __always_inline bool is_vip_addr(__be32 addr)
{
	return bpf_map_lookup_elem(&vip_addrs, &addr);
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

/* The largest IPv4 packet the path to real carries: its own path MTU, or
 * the uplink's, or less if a router on the way said so. */
static __always_inline __u16 real_path_mtu(const struct real_def *real, const struct lb_config *cfg)
{
	__u16 mtu = real->path_mtu ? real->path_mtu : cfg->path_mtu;
	__u16 learned = real->learned_mtu;
	return learned && learned < mtu ? learned : mtu;
}

/* A VIP packet whose encapsulation would not fit the path to its real. */
static __always_inline int too_big(struct xdp_md *ctx, const struct packet *pkt, __u16 path_mtu)
{
	/* Without DF the client allows routers to fragment, which XDP cannot
	 * do, and the kernel here does not own the VIP: drop, as Katran
	 * does. An ICMP error is never answered with another. */
	if (!(pkt->ip->frag_off & bpf_htons(IP_DF)) || pkt->icmp_error)
		return drop_for(STAT_DROP_TOO_BIG);
	if (!icmp_too_big(ctx, pkt, path_mtu))
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
	if (!real || !real->addr || real->gen != gen)
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
	/* No element: a 5-tuple never seen, the usual SYN. One failed
	 * lookup, then nothing to forget. */
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

/* The owner of the flow's entry in the VIP's Maglev ring, remembered in
 * the LRU for the flow's later packets. */
static __always_inline const struct real_def *hashed_real(const struct vip_meta *vip, const struct flow_key *flow,
							  __u32 *slot)
{
	__u32 vip_num = vip->vip_num;
	const struct ch_ring *ring = bpf_map_lookup_elem(&ch_rings, &vip_num);
	if (!ring)
		return NULL;

	/* The LRU remembers the flow itself; the VIP's hash mode only
	 * decides which of its fields pick the real of a flow it does not
	 * know. */
	struct flow_key hashed = *flow;
	switch (vip->hash) {
	case VIP_HASH_DST_PORT_ONLY:
		hashed.src = 0;
		/* fallthrough */
	case VIP_HASH_NO_SRC_PORT:
		hashed.sport = 0;
		break;
	case VIP_HASH_FIVE_TUPLE:
		break;
	}
	__u32 ports;
	__builtin_memcpy(&ports, &hashed.sport, sizeof(ports));
	__u32 entry = jhash_3words(hashed.src, hashed.dst, ports, FLOW_HASH_SEED ^ hashed.proto) % RING_SIZE;
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
	if (!real || !real->addr)
		return NULL;

	/* If the update fails (it does not for an LRU map) the next packet
	 * hashes again, to the same real while the ring is unchanged. From a
	 * program the update writes this CPU's copy only; other CPUs find it
	 * through other_cpus_real. */
	struct flow_pin pin = {.slot = owner, .gen = real->gen};
	bpf_map_update_elem(&lru_flows, flow, &pin, BPF_ANY);
	*slot = owner;
	return real;
}

/* Same 5-tuple, same real: the LRU keeps an established flow on its real
 * when the ring changes, whichever CPU its packets run on; a new flow, and
 * a TCP SYN that reopens a remembered 5-tuple, takes the ring's choice. */
static __always_inline const struct real_def *pick_real(const struct vip_meta *vip, const struct packet *pkt,
							const struct lb_config *cfg, __u32 *slot)
{
	if (!pkt->tcp_syn) {
		struct flow_pin *local = bpf_map_lookup_elem(&lru_flows, &pkt->flow);
		/* No element at all: no CPU has seen the flow, so there is no
		 * other copy to search. */
		if (local) {
			const struct real_def *real = pinned_real(local, slot);
			if (real) {
				count_global(STAT_LRU_HIT);
				return real;
			}
			real = other_cpus_real(&pkt->flow, local, cfg->possible_cpus, slot);
			if (real) {
				count_global(STAT_LRU_REMOTE_HIT);
				return real;
			}
		}
	} else {
		forget_on_other_cpus(&pkt->flow, cfg->possible_cpus);
	}
	count_global(STAT_LRU_MISS);
	return hashed_real(vip, &pkt->flow, slot);
}

/* The VIP serving the flow: one for its very port, else one for every
 * port of its address. */
static __always_inline const struct vip_meta *lookup_vip(const struct flow_key *flow)
{
	struct vip_key key = {
		.addr = flow->dst,
		.port = flow->dport,
		.proto = flow->proto,
	};
	const struct vip_meta *vip = bpf_map_lookup_elem(&vips, &key);
	if (vip)
		return vip;
	key.port = VIP_ANY_PORT;
	return bpf_map_lookup_elem(&vips, &key);
}

/* Sends a packet of pkt->flow to the flow's real, if the flow is a VIP's. */
static __always_inline int balance_flow(struct xdp_md *ctx, const struct packet *pkt)
{
	const struct vip_meta *vip = lookup_vip(&pkt->flow);
	if (!vip)
		return pass();

	__u32 config_key = CONFIG_KEY;
	const struct lb_config *cfg = bpf_map_lookup_elem(&config, &config_key);
	if (!cfg || !cfg->src_addr)
		return pass();

	if (ipv4_has_options(pkt->ip))
		count_global(STAT_IP_OPTIONS);
	/* Only a packet this close to the IPv4 limit (a generic-XDP GRO
	 * aggregate) cannot take another header; the kernel may still
	 * segment it. */
	if (bpf_ntohs(pkt->ip->tot_len) > IPV4_MAX_TOT_LEN - sizeof(struct iphdr))
		return pass();

	__u32 slot;
	const struct real_def *real = pick_real(vip, pkt, cfg, &slot);
	if (!real)
		return drop();

	/* What is sent is the whole frame behind an outer header, bytes
	 * after tot_len (Ethernet padding, trailers) included. */
	__u32 l3_len = ctx->data_end - ctx->data - sizeof(struct ethhdr);
	__u16 path_mtu = real_path_mtu(real, cfg);
	if (l3_len + sizeof(struct iphdr) > path_mtu && sent_as_one_packet(ctx, l3_len))
		return too_big(ctx, pkt, path_mtu);

	__be32 real_addr = real->addr;
	__u64 bytes = ctx->data_end - ctx->data;
	count_traffic(&vip_stats, vip->vip_num, bytes);
	count_traffic(&real_stats, slot, bytes);
	if (!ipip_encap(ctx, pkt, cfg, real_addr))
		return drop();
	count_global(STAT_ENCAPSULATED);
	if (pkt->icmp_error)
		count_global(STAT_ICMP_FORWARDED);
	return XDP_TX;
}

/* What a walk over the real slots lowering one real's path MTU works on. */
struct mtu_walk {
	__be32 real;
	__u16 mtu;
};

static long lower_slot_mtu(__u64 index, void *data)
{
	const struct mtu_walk *walk = data;
	__u32 slot = index;
	struct real_def *def = bpf_map_lookup_elem(&reals, &slot);
	if (!def)
		return 1;
	if (def->addr == walk->real && (!def->learned_mtu || walk->mtu < def->learned_mtu))
		def->learned_mtu = walk->mtu;
	return 0;
}

/* Outer packets carry DF (pckt_encap.h), so a router whose next hop to a
 * real is smaller than we thought drops them and reports frag-needed to
 * our own address, quoting our outer header. Lower the path MTU of every
 * slot of that real; the client's next big packet to it is then answered
 * with frag-needed at the smaller size. The report goes on to the kernel,
 * whose address it is. A walk over every slot is costly but as rare as
 * such reports. */
static __always_inline int lower_path_mtu(const struct packet *pkt, const struct icmphdr *icmp,
					  const struct iphdr *quoted)
{
	__u32 config_key = CONFIG_KEY;
	const struct lb_config *cfg = bpf_map_lookup_elem(&config, &config_key);
	if (!cfg || !cfg->src_addr || icmp->code != ICMP_FRAG_NEEDED)
		return pass();
	if (pkt->ip->daddr != cfg->src_addr || quoted->saddr != cfg->src_addr)
		return pass();
	struct mtu_walk walk = {.real = quoted->daddr, .mtu = bpf_ntohs(icmp->un.frag.mtu)};
	/* 0: a router from before RFC 1191, which names no MTU. */
	if (!walk.mtu)
		return pass();
	if (walk.mtu < MIN_PATH_MTU)
		walk.mtu = MIN_PATH_MTU;
	bpf_loop(MAX_REALS, lower_slot_mtu, &walk, 0);
	count_global(STAT_PATH_MTU_LOWERED);
	return pass();
}

/* ICMP to a VIP address: an echo request is answered here, since the
 * kernel behind us does not own the VIP. An error about a packet a real
 * sent from the VIP (a reply, in DSR) is that flow's business: it goes to
 * the flow's real like the flow's own packets, found from the quoted
 * header with source and destination swapped. ICMP to our own address
 * about an encapsulated packet lowers a real's path MTU. Anything else
 * goes to the kernel. */
static __always_inline int handle_icmp(struct xdp_md *ctx, struct packet *pkt)
{
	struct icmp_quote quote = {};
	struct icmphdr *icmp = parse_icmp(ctx, pkt, &quote);
	if (!icmp)
		return pass();

	if (icmp->type == ICMP_ECHO) {
		if (!is_vip_addr(pkt->ip->daddr))
			return pass();
		icmp_echo_reply(pkt, icmp);
		count_global(STAT_ECHO_REPLIED);
		return XDP_TX;
	}
	if (!quote.ports)
		return pass();
	const struct iphdr *quoted = quote.ip;
	if (quoted->protocol == IPPROTO_IPIP)
		return lower_path_mtu(pkt, icmp, quoted);
	/* The error must be addressed to the quoted packet's sender, and the
	 * quote carry ports: only a first fragment (or none) does. */
	if (quoted->saddr != pkt->ip->daddr || (quoted->frag_off & bpf_htons(IP_OFFSET)))
		return pass();
	if (quoted->protocol != IPPROTO_TCP && quoted->protocol != IPPROTO_UDP)
		return pass();

	pkt->flow.src = quoted->daddr;
	pkt->flow.dst = quoted->saddr;
	pkt->flow.sport = quote.ports->dest;
	pkt->flow.dport = quote.ports->source;
	pkt->flow.proto = quoted->protocol;
	pkt->icmp_error = true;
	return balance_flow(ctx, pkt);
}

static __always_inline int balance(struct xdp_md *ctx)
{
	struct packet pkt = {};
	if (!parse_ipv4(ctx, &pkt))
		return pass();
	/* Only a first fragment has ports, and no fragment can be balanced
	 * on its own: its siblings may hash elsewhere or carry nothing to
	 * hash. The kernel here does not own a VIP to reassemble for. */
	if (ipv4_is_fragment(pkt.ip))
		return is_vip_addr(pkt.ip->daddr) ? drop_for(STAT_DROP_FRAGMENT) : pass();
	if (pkt.ip->protocol == IPPROTO_ICMP)
		return handle_icmp(ctx, &pkt);
	if (!parse_flow(ctx, &pkt))
		return pass();
	return balance_flow(ctx, &pkt);
}

#endif /* __BALANCER_H */
