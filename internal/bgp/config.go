// Package bgp is the BGP speaker that runs inside lab nodes: a katran
// announces its VIPs while its balancer is attached, a router learns them
// from every katran and installs one multipath route per VIP. It is GoBGP
// used as a library; the kernel side (which GoBGP does not do) is an
// Installer the caller gives.
package bgp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
)

// Role is what a speaker does with routes.
type Role string

const (
	// RoleAnnounce is a balancer's speaker: it announces the VIPs and
	// learns nothing.
	RoleAnnounce Role = "announce"
	// RoleLearn is a router's speaker: it learns VIPs from its peers,
	// installs them in the kernel and announces nothing.
	RoleLearn Role = "learn"
)

// Defaults for the fields a config may leave out. The timers are short on
// purpose: a dead balancer must leave the router's routes within seconds.
const (
	DefaultPort       = 179
	DefaultHold       = 3
	DefaultKeepalive  = 1
	DefaultStatusAddr = "127.0.0.1:50179"
)

// Config is what `dsrlab bgp --config JSON` runs; the lab builds it with
// json.Marshal and the speaker reads it with ParseConfig.
type Config struct {
	Node     string     `json:"node"` // for log lines and the status
	Role     Role       `json:"role"`
	ASN      uint32     `json:"asn"`
	RouterID netip.Addr `json:"router_id"` // an IPv4 address, as BGP identifiers are
	// ListenPort is where the speaker accepts sessions; -1 does not
	// listen (the speaker then only connects).
	ListenPort int `json:"listen_port"`
	// Hold and Keepalive are in seconds. A hold time of 0 (no keepalives,
	// allowed by RFC 4271) is refused: GoBGP replaces it by 90 s.
	Hold      int    `json:"hold"`
	Keepalive int    `json:"keepalive"`
	Peers     []Peer `json:"peers"`
	// StatusAddr is where GET /status answers, inside the node's network
	// namespace.
	StatusAddr string `json:"status_addr"`

	// Announce role: the VIPs (/32, /128) and their next hops (the
	// balancer's uplink addresses), announced only while an XDP program is
	// attached to Uplink.
	Announce []netip.Prefix `json:"announce,omitempty"`
	NextHop4 netip.Addr     `json:"next_hop4,omitzero"`
	NextHop6 netip.Addr     `json:"next_hop6,omitzero"`
	Uplink   string         `json:"uplink,omitempty"`
	// NoXDP: the balancer is not an XDP program (a NAT balancer, whose
	// nftables rules the speaker cannot see): announce while Uplink is up.
	NoXDP bool `json:"no_xdp,omitempty"`

	// Learn role: the only prefixes installed (the lab's VIPs); anything
	// else a peer sends (a default route) stays out of the kernel.
	Accept []netip.Prefix `json:"accept,omitempty"`
}

// Peer is a neighbour the speaker keeps a session with.
type Peer struct {
	Addr netip.Addr `json:"addr"`
	ASN  uint32     `json:"asn"`
	Node string     `json:"node,omitempty"` // for log lines and the status
	// Port is where the peer listens; 0 means 179.
	Port int `json:"port,omitempty"`
}

// ParseConfig reads a config: fields left out take their defaults,
// unknown fields are errors, and the result is validated.
func ParseConfig(data []byte) (Config, error) {
	c := Config{
		ListenPort: DefaultPort,
		Hold:       DefaultHold,
		Keepalive:  DefaultKeepalive,
		StatusAddr: DefaultStatusAddr,
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("bgp config: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("bgp config: more than one JSON value")
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate says what is wrong with a config, naming the field.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := validASN(c.ASN); err != nil {
		add("asn: %w", err)
	}
	switch {
	case !c.RouterID.IsValid():
		add("router_id: missing")
	case !c.RouterID.Is4():
		add("router_id: %s is not an IPv4 address", c.RouterID)
	}
	if c.ListenPort != -1 && (c.ListenPort < 1 || c.ListenPort > 65535) {
		add("listen_port: %d is not a port (or -1 to not listen)", c.ListenPort)
	}
	switch {
	case c.Hold == 0:
		add("hold: 0 (no keepalives) is not supported by this speaker: give 3 s or more")
	case c.Hold < 3 || c.Hold > 65535:
		add("hold: %d s: a hold time is 0 or 3 to 65535 s", c.Hold)
	case c.Keepalive < 1 || c.Keepalive > c.Hold/3:
		add("keepalive: %d s: must be from 1 s to a third of the hold time (%d s)", c.Keepalive, c.Hold/3)
	}
	if _, err := netip.ParseAddrPort(c.StatusAddr); err != nil {
		add("status_addr: %w", err)
	}
	if len(c.Peers) == 0 {
		add("peers: none")
	}
	seen := map[netip.Addr]bool{}
	for i, p := range c.Peers {
		switch {
		case !p.Addr.IsValid():
			add("peers[%d].addr: missing", i)
		case seen[p.Addr]:
			add("peers[%d].addr: %s is given twice", i, p.Addr)
		}
		seen[p.Addr] = true
		if err := validASN(p.ASN); err != nil {
			add("peers[%d].asn: %w", i, err)
		}
		if p.Port < 0 || p.Port > 65535 {
			add("peers[%d].port: %d is not a port", i, p.Port)
		}
	}
	switch c.Role {
	case RoleAnnounce:
		errs = append(errs, c.validateAnnounce()...)
	case RoleLearn:
		if len(c.Announce) > 0 {
			add("announce: a %q speaker announces nothing", RoleLearn)
		}
		for i, p := range c.Accept {
			if !isHost(p) {
				add("accept[%d]: %s is not a /32 or /128 VIP", i, p)
			}
		}
	default:
		add("role: %q is neither %q nor %q", c.Role, RoleAnnounce, RoleLearn)
	}
	if len(errs) > 0 {
		return fmt.Errorf("bgp config of node %q: %w", c.Node, errors.Join(errs...))
	}
	return nil
}

func (c *Config) validateAnnounce() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Uplink == "" {
		add("uplink: missing (the interface whose XDP program gates the announcements)")
	}
	if len(c.Accept) > 0 {
		add("accept: a %q speaker installs nothing", RoleAnnounce)
	}
	for i, p := range c.Announce {
		switch {
		case !isHost(p):
			add("announce[%d]: %s is not a /32 or /128 VIP", i, p)
		case p.Addr().Is4() && !c.NextHop4.Is4():
			add("announce[%d]: %s needs next_hop4, an IPv4 address", i, p)
		case p.Addr().Is6() && !(c.NextHop6.Is6() && !c.NextHop6.Is4In6()):
			add("announce[%d]: %s needs next_hop6, an IPv6 address", i, p)
		}
	}
	return errs
}

func validASN(asn uint32) error {
	switch asn {
	case 0, 23456, 4294967295: // reserved, AS_TRANS (RFC 6793), reserved
		return fmt.Errorf("%d is reserved", asn)
	}
	return nil
}

// isHost says whether p is a single address: VIPs are, and nothing else
// is installed or announced.
func isHost(p netip.Prefix) bool {
	return p.IsValid() && p.Bits() == p.Addr().BitLen()
}
