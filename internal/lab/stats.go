package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// BalancerStats are one balancer's counters, by name rather than by map key.
type BalancerStats struct {
	Node         string `json:"node"`
	Passed       uint64 `json:"passed"`
	Encapsulated uint64 `json:"encapsulated"`
	Dropped      uint64 `json:"dropped"`
	TooBig       uint64 `json:"too_big"`
	LRUHits      uint64 `json:"lru_hits"`
	LRURemote    uint64 `json:"lru_remote_hits"` // found on another CPU's LRU copy
	LRUMisses    uint64 `json:"lru_misses"`
	// The parts of the counters above by cause, and ICMP answered.
	EchoReplies      uint64       `json:"echo_replies"`
	ICMPForwarded    uint64       `json:"icmp_forwarded"`
	IPOptions        uint64       `json:"ip_options"`
	DroppedFragments uint64       `json:"dropped_fragments"`
	DroppedTooBig    uint64       `json:"dropped_too_big"`
	PathMTULowered   uint64       `json:"path_mtu_lowered"`
	IPv6Malformed    uint64       `json:"ipv6_malformed"`
	VIPs             []CounterRow `json:"vips"`
	Reals            []CounterRow `json:"reals"`
	// Health is the controller's view of the reals from this balancer
	// (health.json); empty when its VIPs have no checks.
	Health []health.Real `json:"health,omitempty"`
}

// CounterRow is the traffic of one VIP or real.
type CounterRow struct {
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Stats reads the counters of every XDP balancer of a running lab from the
// kernel, through the programs attached to the katrans' interfaces; those
// on other hosts through dsrlab's agent there.
func Stats(ctx context.Context, rts runtime.Set, t *topology.Topology) ([]BalancerStats, error) {
	out, hosts, err := statsOn(t, topology.LocalHost, localOpener(ctx, rts, t))
	if err != nil {
		return nil, err
	}
	herr := withHealth(t.Name, out)
	results, err := onHosts(ctx, rts, t, hosts, phaseStats)
	for _, res := range results {
		out = append(out, res.Stats...)
	}
	return out, errors.Join(err, herr)
}

// withHealth adds to the balancers' stats the health of their reals, as
// the controller of this host found it: each host's controller checks
// from its own katrans.
func withHealth(lab string, stats []BalancerStats) error {
	st, err := health.ReadState(labDir(lab))
	for i := range stats {
		stats[i].Health = st.OfKatran(stats[i].Node)
	}
	return err
}

// statsOn reads the balancers on host, and lists the other hosts that have
// some.
func statsOn(t *topology.Topology, host string, open nsOpener) ([]BalancerStats, []string, error) {
	realName := map[netip.Addr]string{}
	for _, r := range t.NodesOfKind(topology.KindReal) {
		if up := r.Uplink(); up != nil {
			for _, a := range []netip.Prefix{up.Addr, up.Addr6} {
				if a.IsValid() {
					realName[a.Addr()] = r.Name
				}
			}
		}
	}
	var out []BalancerStats
	var others []string
	for _, k := range t.NodesOfKind(topology.KindKatran) {
		// A user's own balancer keeps its own counters: `dsrlab map`
		// shows them.
		if len(dsrVIPs(t.VIPsServedBy(k))) == 0 || k.Program != nil {
			continue
		}
		if k.Host.Name != host {
			if !slices.Contains(others, k.Host.Name) {
				others = append(others, k.Host.Name)
			}
			continue
		}
		s, err := balancerStats(k, open)
		if err != nil {
			return nil, nil, fmt.Errorf("node %s: %w", k.Name, err)
		}
		bs := BalancerStats{Node: k.Name, Passed: s.Passed, Encapsulated: s.Encapsulated, Dropped: s.Dropped,
			TooBig: s.TooBig, LRUHits: s.LRUHits, LRURemote: s.LRURemoteHits, LRUMisses: s.LRUMisses,
			EchoReplies: s.EchoReplies, ICMPForwarded: s.ICMPForwarded, IPOptions: s.IPOptions,
			DroppedFragments: s.DroppedFragments, DroppedTooBig: s.DroppedTooBig, PathMTULowered: s.PathMTULowered,
			IPv6Malformed: s.IPv6Malformed}
		for v, c := range s.VIPs {
			bs.VIPs = append(bs.VIPs, CounterRow{Name: v.String(), Packets: c.Packets, Bytes: c.Bytes})
		}
		for a, c := range s.Reals {
			name := a.String()
			if n := realName[a]; n != "" {
				name = n + " " + name
			}
			bs.Reals = append(bs.Reals, CounterRow{Name: name, Packets: c.Packets, Bytes: c.Bytes})
		}
		sort.Slice(bs.VIPs, func(i, j int) bool { return bs.VIPs[i].Name < bs.VIPs[j].Name })
		sort.Slice(bs.Reals, func(i, j int) bool { return bs.Reals[i].Name < bs.Reals[j].Name })
		out = append(out, bs)
	}
	return out, others, nil
}

func balancerStats(k *topology.Node, open nsOpener) (bpf.Stats, error) {
	ns, err := open(k)
	if err != nil {
		return bpf.Stats{}, err
	}
	defer ns.Close()
	lb, _, err := openBalancer(ns, k.Uplink().Name)
	if err != nil {
		return bpf.Stats{}, err
	}
	if lb == nil {
		return bpf.Stats{}, fmt.Errorf("no XDP balancer attached to %s; `dsrlab up` attaches it", k.Uplink())
	}
	defer lb.Close()
	return lb.Stats()
}
