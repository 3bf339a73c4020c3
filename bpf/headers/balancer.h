/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* The balancer's pipeline, in the packet's order: parse, look up the VIP,
 * check that its encapsulation fits the path, pick a real (the flow's
 * remembered real, from this CPU's copy of the table or another's, else
 * the VIP's Maglev ring), encapsulate in IPIP, send back out of the
 * interface it came in on. A header, not the program, so the benchmark's
 * harness program runs the very same code. */
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
static __always_inline bool sent_as_one_packet(struct xdp_md *ctx, __u16 ip_len)
{
	/* Input: the L3 length to check, instead of the frame's. */
	__u32 mtu_len = ip_len;
	return bpf_check_mtu(ctx, 0, &mtu_len, 0, 0) == BPF_MTU_CHK_RET_SUCCESS;
}

/* A client packet whose encapsulation would not fit the path. */
static __always_inline int too_big(struct xdp_md *ctx, const struct packet *pkt, const struct lb_config *cfg)
{
	/* Without DF the client allows routers to fragment, which XDP cannot
	 * do; the kernel gets the packet and fragments or drops it as its own
	 * routes say. */
	if (!(pkt->ip->frag_off & bpf_htons(IP_DF)))
		return pass();
	if (!icmp_too_big(ctx, pkt, cfg->path_mtu))
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

	__u32 ports;
	__builtin_memcpy(&ports, &flow->sport, sizeof(ports));
	__u32 entry = jhash_3words(flow->src, flow->dst, ports, FLOW_HASH_SEED ^ flow->proto) % RING_SIZE;
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

static __always_inline int balance(struct xdp_md *ctx)
{
	struct packet pkt = {};
	if (!parse_flow(ctx, &pkt))
		return pass();

	struct vip_key key = {
		.addr = pkt.flow.dst,
		.port = pkt.flow.dport,
		.proto = pkt.flow.proto,
	};
	const struct vip_meta *vip = bpf_map_lookup_elem(&vips, &key);
	if (!vip)
		return pass();

	__u32 config_key = CONFIG_KEY;
	const struct lb_config *cfg = bpf_map_lookup_elem(&config, &config_key);
	if (!cfg || !cfg->src_addr)
		return pass();

	__u16 ip_len = bpf_ntohs(pkt.ip->tot_len);
	/* Only a packet this close to the IPv4 limit (a generic-XDP GRO
	 * aggregate) cannot take another header; the kernel may still
	 * segment it. */
	if (ip_len > IPV4_MAX_TOT_LEN - sizeof(struct iphdr))
		return pass();
	if (ip_len + sizeof(struct iphdr) > cfg->path_mtu && sent_as_one_packet(ctx, ip_len))
		return too_big(ctx, &pkt, cfg);

	__u32 slot;
	const struct real_def *real = pick_real(vip, &pkt, cfg, &slot);
	if (!real)
		return drop();
	__be32 real_addr = real->addr;

	__u64 bytes = ctx->data_end - ctx->data;
	count_traffic(&vip_stats, vip->vip_num, bytes);
	count_traffic(&real_stats, slot, bytes);
	if (!ipip_encap(ctx, &pkt, cfg, real_addr))
		return drop();
	count_global(STAT_ENCAPSULATED);
	return XDP_TX;
}

#endif /* __BALANCER_H */
