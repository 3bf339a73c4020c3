// Package nat turns a load-balancer node into a classic NAT load balancer,
// the baseline the lab measures Direct Server Return against. It programs
// nftables in the node's network namespace: new flows to a VIP are DNATed to
// a backend chosen by a hash of the flow, and SNATed to the node's own
// address, so the backend's answers come back through the node (the hair-pin
// DSR avoids) to be translated back to the VIP.
//
// Everything lives in one table, TableName, which Apply replaces as a whole
// and Remove deletes, so the package never touches rules it did not write.
package nat

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
)

// TableName is the ip-family table this package owns.
const TableName = "dsrlab_nat"

const (
	preroutingChain  = "prerouting"
	postroutingChain = "postrouting"
)

// Backend is one real behind a VIP. Traffic keeps the service's port.
type Backend struct {
	Addr netip.Addr
	// Weight is the backend's share of new flows relative to the others,
	// resolved to at most MaxSlots hash slots per service (see MaxSlots). Zero
	// takes the backend out of the hash: it gets no new flows, while the
	// flows conntrack already bound to it carry on until they end.
	Weight uint32
}

// Service is one VIP:port in NAT mode.
type Service struct {
	VIP      netip.Addr
	Port     uint16
	Proto    string // "tcp" or "udp"
	Backends []Backend
	// SNAT is the load balancer's own address, which backends see as the
	// client and therefore answer to. The zero Addr leaves sources alone
	// (DNAT only); replies then come back only if the backends route the
	// clients through the load balancer.
	SNAT netip.Addr
}

// Apply makes TableName hold exactly the given services. The old table (if
// any) is deleted and the new one created in one nftables transaction, so
// packets never meet a half-written ruleset, and applying the same services
// twice changes nothing. Flows already tracked keep their backend: conntrack
// applies NAT rules to the first packet of a flow only.
//
// nsFD is an open file descriptor of the target network namespace, whose
// owner must also have turned forwarding on (net.ipv4.ip_forward=1): this
// package writes nftables only, no sysctls.
func Apply(nsFD int, services []Service) error {
	rs, err := build(services)
	if err != nil {
		return err
	}
	c, err := conn(nsFD)
	if err != nil {
		return err
	}
	// Adding before deleting makes the delete valid whether or not the
	// table existed, without a separate (racy) existence check.
	c.AddTable(rs.table)
	c.DelTable(rs.table)
	c.AddTable(rs.table)
	c.AddChain(rs.prerouting)
	c.AddChain(rs.postrouting)
	for _, m := range rs.sets {
		if err := c.AddSet(m.set, m.elements); err != nil {
			return fmt.Errorf("nat: set %s: %w", m.set.Name, err)
		}
	}
	for _, r := range rs.rules {
		c.AddRule(r)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nat: apply table %s: %w", TableName, err)
	}
	return nil
}

// Remove deletes TableName; it is not an error if there is none.
func Remove(nsFD int) error {
	c, err := conn(nsFD)
	if err != nil {
		return err
	}
	t := table()
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nat: remove table %s: %w", TableName, err)
	}
	return nil
}

// Rules reads back the services the kernel holds in TableName, in the order
// they were applied; nil if the table does not exist. It reports the kernel's
// view, not the caller's input: each backend's Weight is its number of hash
// slots, and zero-weight backends are absent because the kernel never saw
// them.
func Rules(nsFD int) ([]Service, error) {
	c, err := conn(nsFD)
	if err != nil {
		return nil, err
	}
	// A dump rather than a lookup by name, so that "no table" is an empty
	// answer and not an error to tell apart from real failures.
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("nat: list tables: %w", err)
	}
	var t *nftables.Table
	for _, x := range tables {
		if x.Name == TableName {
			t = x
		}
	}
	if t == nil {
		return nil, nil
	}
	pre, err := c.GetRules(t, &nftables.Chain{Name: preroutingChain, Table: t})
	if err != nil {
		return nil, fmt.Errorf("nat: read chain %s: %w", preroutingChain, err)
	}
	post, err := c.GetRules(t, &nftables.Chain{Name: postroutingChain, Table: t})
	if err != nil {
		return nil, fmt.Errorf("nat: read chain %s: %w", postroutingChain, err)
	}
	elements := func(name string) ([]nftables.SetElement, error) {
		s, err := c.GetSetByName(t, name)
		if err != nil {
			return nil, err
		}
		return c.GetSetElements(s)
	}
	return decode(pre, post, elements)
}

func conn(nsFD int) (*nftables.Conn, error) {
	// The netlink library reads fd 0 as "the caller's own namespace"; a
	// caller that passes 0 has lost its fd, and must not get the host's
	// ruleset rewritten instead.
	if nsFD <= 0 {
		return nil, errors.New("nat: no network namespace fd")
	}
	c, err := nftables.New(nftables.WithNetNSFd(nsFD))
	if err != nil {
		return nil, fmt.Errorf("nat: nftables connection: %w", err)
	}
	return c, nil
}
