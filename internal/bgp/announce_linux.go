package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/vishvananda/netlink"
)

// xdpPoll is how often a balancer's speaker looks whether its XDP program
// is still attached.
const xdpPoll = 200 * time.Millisecond

// withdrawWait bounds how long a stopping balancer waits for its
// withdrawals to be written before it closes its sessions.
const withdrawWait = time.Second

// announce runs a balancer's speaker: the VIPs are announced while an XDP
// program is attached to the uplink and withdrawn when there is none. On
// the way out the VIPs are withdrawn first and the sessions closed after,
// so the router moves the flows away before it hears of the stop.
func (sp *speaker) announce(ctx context.Context) error {
	tick := time.NewTicker(xdpPoll)
	defer tick.Stop()
	announcing := false
	for first := true; ; first = false {
		attached, why := balancerReady(sp.cfg)
		var err error
		said := "" // once the status says so too, as a router's changes are
		switch {
		case first && !attached:
			said = fmt.Sprintf("not announcing %s yet: %s", prefixList(sp.cfg.Announce), why)
		case attached && !announcing:
			if err = sp.addPaths(); err == nil {
				announcing = true
				said = fmt.Sprintf("announce %s: balancer ready on %s", prefixList(sp.cfg.Announce), sp.cfg.Uplink)
			}
		case !attached && announcing:
			sp.deletePaths()
			announcing = false
			said = fmt.Sprintf("withdraw %s: %s", prefixList(sp.cfg.Announce), why)
		}
		sp.setAnnounced(attached, announcing)
		if said != "" {
			sp.log.printf("%s", said)
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			if announcing {
				sp.log.printf("withdraw %s: stopping", prefixList(sp.cfg.Announce))
				sp.withdrawAndWait()
				sp.setAnnounced(attached, false)
			}
			// Closing the sessions sends each peer a Cease notification.
			sp.bgp.StopBgp(context.Background(), &api.StopBgpRequest{})
			return nil
		case addr := <-sp.dropped:
			sp.rearm(addr)
		case <-tick.C:
		case <-sp.kick:
		}
	}
}

// balancerReady looks at the uplink in the speaker's own network
// namespace (netlink needs no capability for that): an XDP program
// attached, or for a balancer that is no XDP program the uplink up. why
// says what is missing.
func balancerReady(cfg Config) (ready bool, why string) {
	link, err := netlink.LinkByName(cfg.Uplink)
	if err != nil {
		return false, fmt.Sprintf("uplink %s: %v", cfg.Uplink, err)
	}
	if cfg.NoXDP {
		if link.Attrs().Flags&net.FlagUp != 0 {
			return true, ""
		}
		return false, cfg.Uplink + " is down"
	}
	if x := link.Attrs().Xdp; x != nil && x.Attached {
		return true, ""
	}
	return false, "no XDP program on " + cfg.Uplink
}

// addPaths announces every VIP, or none if one fails.
func (sp *speaker) addPaths() error {
	for _, vip := range sp.cfg.Announce {
		nh := sp.cfg.NextHop4
		if vip.Addr().Is6() {
			nh = sp.cfg.NextHop6
		}
		path, err := vipPath(vip, nh)
		if err == nil {
			_, err = sp.bgp.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		}
		if err != nil {
			sp.deletePaths()
			return fmt.Errorf("bgp %s: announce %s: %w", sp.cfg.Node, vip, err)
		}
	}
	return nil
}

// deletePaths withdraws every path the speaker announced.
func (sp *speaker) deletePaths() {
	for _, f := range []*api.Family{familyIPv4, familyIPv6} {
		err := sp.bgp.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: f})
		if err != nil {
			sp.log.printf("withdraw %s paths: %v", f.Afi, err)
		}
	}
}

// withdrawAndWait withdraws the VIPs and waits until every established
// peer that had been sent some has been sent an UPDATE since, or
// withdrawWait passes.
func (sp *speaker) withdrawAndWait() {
	before := map[string]uint64{}
	if peers, err := sp.sessions(); err == nil {
		for _, p := range peers {
			if p.GetState().GetSessionState() == api.PeerState_ESTABLISHED && advertised(p) > 0 {
				before[p.GetConf().GetNeighborAddress()] = updatesSent(p)
			}
		}
	}
	sp.deletePaths()
	deadline := time.Now().Add(withdrawWait)
	for len(before) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		peers, err := sp.sessions()
		if err != nil {
			return
		}
		for _, p := range peers {
			addr := p.GetConf().GetNeighborAddress()
			if n, ok := before[addr]; ok && (updatesSent(p) > n || p.GetState().GetSessionState() != api.PeerState_ESTABLISHED) {
				delete(before, addr)
			}
		}
	}
}

func advertised(p *api.Peer) uint64 {
	var n uint64
	for _, af := range p.AfiSafis {
		n += af.GetState().GetAdvertised()
	}
	return n
}

func updatesSent(p *api.Peer) uint64 {
	return p.GetState().GetMessages().GetSent().GetUpdate()
}

func (sp *speaker) setAnnounced(attached, announced bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.attached = attached
	sp.announced = nil
	if announced {
		sp.announced = append(sp.announced, sp.cfg.Announce...)
	}
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "no VIP"
	}
	s := ps[0].String()
	for _, p := range ps[1:] {
		s += ", " + p.String()
	}
	return s
}
