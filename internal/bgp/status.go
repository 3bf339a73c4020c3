package bgp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
)

// StatusPath is where a speaker answers with its Status.
const StatusPath = "/status"

// Status is a speaker's sessions and routes as it has them now.
type Status struct {
	Node     string       `json:"node"`
	ASN      uint32       `json:"asn"`
	RouterID netip.Addr   `json:"router_id"`
	Role     Role         `json:"role"`
	Peers    []PeerStatus `json:"peers"`
	// Announced: the VIPs a balancer announces now.
	Announced []netip.Prefix `json:"announced"`
	// Attached: whether a balancer's uplink has an XDP program.
	Attached *bool `json:"attached,omitempty"`
	// Installed: the routes a router gave its Installer.
	Installed []Route `json:"installed,omitempty"`
}

// PeerStatus is one session. Received and Accepted count the prefixes the
// peer sent and those the speaker took (a router: the ones it may install);
// Advertised counts the prefixes sent to it.
type PeerStatus struct {
	Addr          netip.Addr `json:"addr"`
	Node          string     `json:"node,omitempty"`
	ASN           uint32     `json:"asn"`
	State         string     `json:"state"` // "established", "active", "idle", ...
	UptimeSeconds int64      `json:"uptime_seconds"`
	Received      uint64     `json:"received"`
	Accepted      uint64     `json:"accepted"`
	Advertised    uint64     `json:"advertised"`
}

// Route is a prefix over its next hops (sorted).
type Route struct {
	Prefix   netip.Prefix `json:"prefix"`
	NextHops []netip.Addr `json:"next_hops"`
}

// ReadStatus asks the speaker at the other end of conn (dialled to its
// StatusAddr, from inside its network namespace) for its status. It closes
// nothing: the caller owns conn and its deadline.
func ReadStatus(conn net.Conn) (*Status, error) {
	req, err := http.NewRequest(http.MethodGet, "http://speaker"+StatusPath, nil)
	if err != nil {
		return nil, err
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("bgp status: send request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return nil, fmt.Errorf("bgp status: read answer: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bgp status: %s", resp.Status)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("bgp status: %w", err)
	}
	return &st, nil
}
