package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// reconcileEvery is how often a router compares its routes with its BGP
// table even when no event came: a missed event or a failed install is
// made good within a second.
const reconcileEvery = time.Second

// learn runs a router's speaker: after every session or route event (and
// every second) it works out, for each VIP, the next hops of all the paths
// its established peers sent (not only GoBGP's best one: the kernel route
// is multipath) and has the installer match them.
func (sp *speaker) learn(ctx context.Context, inst Installer) error {
	// Routes a speaker before this one left behind (it crashed) came from
	// sessions that are gone: none stays until a peer sends it again.
	for _, dst := range sp.cfg.Accept {
		if err := inst.Delete(dst); err != nil {
			sp.log.printf("remove stale route %s: %v", dst, err)
		}
	}
	tick := time.NewTicker(reconcileEvery)
	defer tick.Stop()
	for {
		sp.reconcile(inst)
		select {
		case <-ctx.Done():
			sp.bgp.StopBgp(context.Background(), &api.StopBgpRequest{})
			// The sessions are closed: the routes they gave go too.
			sp.apply(inst, map[netip.Prefix][]netip.Addr{}, "speaker stopped")
			return nil
		case addr := <-sp.dropped:
			sp.rearm(addr)
		case <-tick.C:
		case <-sp.kick:
		}
	}
}

func (sp *speaker) reconcile(inst Installer) {
	want, accepted, err := sp.wanted()
	if err != nil {
		sp.log.printf("read BGP table: %v", err)
		return
	}
	sp.mu.Lock()
	sp.accepted = accepted
	sp.mu.Unlock()
	sp.apply(inst, want, "no path left")
}

// wanted reads, from GoBGP's table, the next hops of every acceptable
// prefix, and how many paths each peer gave that count.
func (sp *speaker) wanted() (map[netip.Prefix][]netip.Addr, map[string]uint64, error) {
	peers, err := sp.sessions()
	if err != nil {
		return nil, nil, err
	}
	established := map[string]bool{}
	for _, p := range peers {
		if p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
			established[p.GetConf().GetNeighborAddress()] = true
		}
	}
	want := map[netip.Prefix][]netip.Addr{}
	accepted := map[string]uint64{}
	for _, f := range []*api.Family{familyIPv4, familyIPv6} {
		err := sp.bgp.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: f}, func(d *api.Destination) {
			for _, p := range d.Paths {
				if p.IsWithdraw || !established[p.NeighborIp] {
					continue
				}
				dst, nh, err := pathRoute(p)
				if err != nil || !sp.accepts(dst) {
					continue
				}
				want[dst] = append(want[dst], nh)
				accepted[p.NeighborIp]++
			}
		})
		if err != nil {
			return nil, nil, err
		}
	}
	for dst, vias := range want {
		slices.SortFunc(vias, netip.Addr.Compare)
		want[dst] = slices.Compact(vias)
	}
	return want, accepted, nil
}

// accepts says whether a prefix may enter the kernel: only the lab's VIPs
// may, so a peer cannot send the router a default route.
func (sp *speaker) accepts(dst netip.Prefix) bool {
	return isHost(dst) && slices.Contains(sp.cfg.Accept, dst)
}

// apply has the installer match want; a failed change is logged and tried
// again at the next reconcile.
func (sp *speaker) apply(inst Installer, want map[netip.Prefix][]netip.Addr, why string) {
	sp.mu.Lock()
	installed := sp.installed
	sp.mu.Unlock()
	next := map[netip.Prefix][]netip.Addr{}
	// Said once the status says so too: who reads the log line and then
	// asks for the status must find the change there.
	var done []string
	for _, dst := range sortedPrefixes(want) {
		vias := want[dst]
		if slices.Equal(installed[dst], vias) {
			next[dst] = vias
			continue
		}
		if err := inst.Set(dst, vias); err != nil {
			sp.log.printf("install %s via %s: %v", dst, addrList(vias), err)
			if old, ok := installed[dst]; ok {
				next[dst] = old
			}
			continue
		}
		next[dst] = vias
		done = append(done, fmt.Sprintf("installed %s via %s", dst, addrList(vias)))
	}
	for _, dst := range sortedPrefixes(installed) {
		if _, ok := want[dst]; ok {
			continue
		}
		if err := inst.Delete(dst); err != nil {
			sp.log.printf("remove %s: %v", dst, err)
			next[dst] = installed[dst]
			continue
		}
		done = append(done, fmt.Sprintf("removed %s: %s", dst, why))
	}
	sp.mu.Lock()
	sp.installed = next
	sp.mu.Unlock()
	for _, line := range done {
		sp.log.printf("%s", line)
	}
}

func addrList(as []netip.Addr) string {
	s := ""
	for i, a := range as {
		if i > 0 {
			s += ", "
		}
		s += a.String()
	}
	return s
}
