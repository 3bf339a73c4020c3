package bgp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Installer puts a router's learned routes into its kernel.
type Installer interface {
	// Set routes dst over every via (one multipath route), replacing the
	// route there was.
	Set(dst netip.Prefix, vias []netip.Addr) error
	// Delete removes the route to dst; no route is no error.
	Delete(dst netip.Prefix) error
}

// retryTimer is how soon GoBGP dials a peer again and leaves the idle state
// after a reset: about a second, so a balancer that comes back is in use
// again at once (GoBGP's defaults are 30 s and 120 s).
const retryTimer = 1

var (
	familyIPv4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyIPv6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// speaker is one running GoBGP server and what the roles keep beside it.
type speaker struct {
	cfg   Config
	bgp   *server.BgpServer
	log   *eventLog
	peers map[string]Peer // by address, as GoBGP names peers
	// kick asks the role's loop to look again at once (a session or a
	// route changed).
	kick chan struct{}
	// dropped names the peers whose session went down, for the role's
	// loop to rearm.
	dropped chan string

	mu        sync.Mutex
	announced []netip.Prefix
	attached  bool
	installed map[netip.Prefix][]netip.Addr
	accepted  map[string]uint64 // by peer address: paths the router may install
}

// Run runs a speaker until ctx ends, then stops it cleanly: a balancer
// withdraws its VIPs before closing its sessions, a router removes the
// routes it installed. Log lines go to out; inst is needed by a router only.
func Run(ctx context.Context, cfg Config, inst Installer, out io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Role == RoleLearn && inst == nil {
		return errors.New("bgp: a router's speaker needs an installer")
	}
	sp := &speaker{
		cfg:       cfg,
		log:       newEventLog(out, cfg.Node),
		peers:     map[string]Peer{},
		kick:      make(chan struct{}, 1),
		dropped:   make(chan string, len(cfg.Peers)),
		installed: map[netip.Prefix][]netip.Addr{},
		accepted:  map[string]uint64{},
	}
	for _, p := range cfg.Peers {
		sp.peers[p.Addr.String()] = p
	}
	sp.bgp = server.NewBgpServer(server.LoggerOption(gobgpLogger{sp.log}))
	go sp.bgp.Serve()
	// Whatever happens, the sessions close (with a Cease) and the
	// listeners go; GoBGP's server goroutine itself never ends.
	defer sp.bgp.Stop()

	// The watch outlives ctx: the sessions closing at the end are events too.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if err := sp.start(watchCtx); err != nil {
		return fmt.Errorf("bgp %s: %w", cfg.Node, err)
	}
	status, err := sp.serveStatus()
	if err != nil {
		return fmt.Errorf("bgp %s: %w", cfg.Node, err)
	}
	defer status.Close()
	sp.log.printf("speaker started: %s, AS %d, router id %s, %d peers", cfg.Role, cfg.ASN, cfg.RouterID, len(cfg.Peers))

	if cfg.Role == RoleAnnounce {
		err = sp.announce(ctx)
	} else {
		err = sp.learn(ctx, inst)
	}
	sp.log.printf("speaker stopped")
	return err
}

// start configures GoBGP: the global settings, the one-way policy of the
// role, the peers and the event watch.
func (sp *speaker) start(watchCtx context.Context) error {
	ctx := context.Background()
	cfg := sp.cfg
	err := sp.bgp.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        cfg.ASN,
		RouterId:   cfg.RouterID.String(),
		ListenPort: int32(cfg.ListenPort),
	}})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// Routes flow one way, balancers to routers: a speaker sends only the
	// paths it originates. A router passing one balancer's VIP on to
	// another would have that balancer announce it back after its own
	// withdrawal.
	err = sp.bgp.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{
		Name: "own-routes-only",
		Statements: []*api.Statement{{
			Name:       "own",
			Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
		}},
	}})
	if err == nil {
		err = sp.bgp.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name:          "global",
			Direction:     api.PolicyDirection_EXPORT,
			Policies:      []*api.Policy{{Name: "own-routes-only"}},
			DefaultAction: api.RouteAction_REJECT,
		}})
	}
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	for _, p := range cfg.Peers {
		if err := sp.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: sp.apiPeer(p)}); err != nil {
			return fmt.Errorf("peer %s: %w", p.Addr, err)
		}
	}
	watch := &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}
	if cfg.Role == RoleLearn {
		watch.Table = &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_ADJIN},
		}}
	}
	var sessions sessionStates
	if err := sp.bgp.WatchEvent(watchCtx, watch, func(ev *api.WatchEventResponse) {
		sp.onEvent(ev, &sessions)
	}); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	return nil
}

func (sp *speaker) apiPeer(p Peer) *api.Peer {
	peer := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Addr.String(), PeerAsn: p.ASN, Description: p.Node},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           retryTimer,
			HoldTime:               uint64(sp.cfg.Hold),
			KeepaliveInterval:      uint64(sp.cfg.Keepalive),
			IdleHoldTimeAfterReset: retryTimer,
		}},
		// Both families on every session: IPv6 VIPs travel with IPv6 next
		// hops over an IPv4 session (multiprotocol BGP).
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: familyIPv4, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: familyIPv6, Enabled: true}},
		},
	}
	// A router only listens; balancers connect. When both sides dial,
	// GoBGP's fixed 5 s idle hold after a failed attempt can keep them
	// out of step for good: each dials while the other is idle.
	peer.Transport = &api.Transport{RemotePort: uint32(p.Port), PassiveMode: sp.cfg.Role == RoleLearn}
	return peer
}

// rearm re-creates the peer of a session that went down. GoBGP holds a
// peer idle for a fixed 5 s after a failure, and refuses its connections
// meanwhile; a new peer starts ready, so a balancer that comes back at once
// is taken back at once.
func (sp *speaker) rearm(addr string) {
	ctx := context.Background()
	err := sp.bgp.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr})
	if err == nil {
		err = sp.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: sp.apiPeer(sp.peers[addr])})
	}
	if err != nil {
		sp.log.printf("rearm peer %s: %v", sp.peerName(addr), err)
	}
}

// sessionStates is the last state of each session, as the watch saw it.
type sessionStates map[string]api.PeerState_SessionState

// onEvent logs session and route changes and wakes the role's loop. GoBGP
// calls it from one goroutine, in the order things happened.
func (sp *speaker) onEvent(ev *api.WatchEventResponse, sessions *sessionStates) {
	if *sessions == nil {
		*sessions = sessionStates{}
	}
	if pe := ev.GetPeer(); pe != nil && pe.Type == api.WatchEventResponse_PeerEvent_STATE {
		st := pe.Peer.GetState()
		addr, state := st.GetNeighborAddress(), st.GetSessionState()
		was := (*sessions)[addr]
		(*sessions)[addr] = state
		switch {
		case state == api.PeerState_ESTABLISHED && was != state:
			sp.log.printf("session up with %s", sp.peerName(addr))
		case was == api.PeerState_ESTABLISHED && state != was:
			sp.log.printf("session down with %s: %s", sp.peerName(addr), sp.log.takeDownReason(addr))
			select {
			case sp.dropped <- addr:
			default:
			}
		}
	}
	if te := ev.GetTable(); te != nil {
		for _, p := range te.Paths {
			prefix, nh, err := pathRoute(p)
			if err != nil {
				sp.log.printf("route from %s not understood: %v", sp.peerName(p.NeighborIp), err)
				continue
			}
			if p.IsWithdraw {
				sp.log.printf("route %s withdrawn by %s", prefix, sp.peerName(p.NeighborIp))
			} else {
				sp.log.printf("route %s via %s received from %s", prefix, nh, sp.peerName(p.NeighborIp))
			}
		}
	}
	select {
	case sp.kick <- struct{}{}:
	default:
	}
}

func (sp *speaker) peerName(addr string) string {
	p, ok := sp.peers[addr]
	if !ok {
		return addr
	}
	if p.Node == "" {
		return fmt.Sprintf("%s (AS %d)", addr, p.ASN)
	}
	return fmt.Sprintf("%s (%s, AS %d)", p.Node, addr, p.ASN)
}

// sessions lists GoBGP's peers in config order.
func (sp *speaker) sessions() ([]*api.Peer, error) {
	byAddr := map[string]*api.Peer{}
	err := sp.bgp.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		byAddr[p.GetConf().GetNeighborAddress()] = p
	})
	if err != nil {
		return nil, err
	}
	var out []*api.Peer
	for _, p := range sp.cfg.Peers {
		if ap, ok := byAddr[p.Addr.String()]; ok {
			out = append(out, ap)
		}
	}
	return out, nil
}

func (sp *speaker) serveStatus() (io.Closer, error) {
	ln, err := net.Listen("tcp", sp.cfg.StatusAddr)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatusPath, func(w http.ResponseWriter, _ *http.Request) {
		st, err := sp.status()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}

func (sp *speaker) status() (*Status, error) {
	peers, err := sp.sessions()
	if err != nil {
		return nil, err
	}
	st := &Status{Node: sp.cfg.Node, ASN: sp.cfg.ASN, RouterID: sp.cfg.RouterID, Role: sp.cfg.Role, Peers: []PeerStatus{}}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, p := range peers {
		ps := PeerStatus{
			ASN:   p.GetConf().GetPeerAsn(),
			State: strings.ToLower(p.GetState().GetSessionState().String()),
		}
		addr := p.GetConf().GetNeighborAddress()
		ps.Addr, _ = netip.ParseAddr(addr)
		ps.Node = sp.peers[addr].Node
		if up := p.GetTimers().GetState().GetUptime(); up != nil && p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
			ps.UptimeSeconds = int64(time.Since(up.AsTime()).Seconds())
		}
		for _, af := range p.AfiSafis {
			ps.Received += af.GetState().GetReceived()
			ps.Accepted += af.GetState().GetAccepted()
			ps.Advertised += af.GetState().GetAdvertised()
		}
		if sp.cfg.Role == RoleLearn {
			// What a router may install, not what GoBGP's (open) import
			// policy let into its table.
			ps.Accepted = sp.accepted[addr]
		}
		st.Peers = append(st.Peers, ps)
	}
	st.Announced = append([]netip.Prefix{}, sp.announced...)
	if sp.cfg.Role == RoleAnnounce {
		attached := sp.attached
		st.Attached = &attached
	}
	for _, dst := range sortedPrefixes(sp.installed) {
		st.Installed = append(st.Installed, Route{Prefix: dst, NextHops: sp.installed[dst]})
	}
	return st, nil
}

func sortedPrefixes[V any](m map[netip.Prefix]V) []netip.Prefix {
	var out []netip.Prefix
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, comparePrefix)
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
