// Package nat turns a load-balancer node into a classic NAT load balancer,
// the baseline the lab measures Direct Server Return against. It programs
// nftables in the node's network namespace: new flows to a VIP are DNATed to
// a backend chosen by a hash of the flow, and SNATed to the node's own
// address, so the backend's answers come back through the node (the hair-pin
// DSR avoids) to be translated back to the VIP.
//
// Everything lives in the tables named TableName, one per address family,
// which Apply replaces as a whole and Remove deletes, so the package never
// touches rules it did not write. IPv4 and IPv6 services work alike; NAT
// never changes a packet's family.
package nat

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
)

// TableName names the tables this package owns: one of family ip for the
// IPv4 services and one of family ip6 for the IPv6 services, each present
// only while that family has services. Separate tables rather than one
// inet table keep each rule in its own family's terms (ip daddr, ip6
// daddr), and the IPv4 table the one that labs before IPv6 NAT wrote.
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

// Service is one VIP:port in NAT mode, IPv4 or IPv6; its backends and SNAT
// address are of the VIP's family.
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

// Apply makes the TableName tables hold exactly the given services, of
// either family. The old tables (if any) are deleted and the new ones
// created in one nftables transaction, so packets never meet a half-written
// ruleset, and applying the same services twice changes nothing. Flows already tracked keep their backend: conntrack
// applies NAT rules to the first packet of a flow only.
//
// nsFD is an open file descriptor of the target network namespace, whose
// owner must also have turned forwarding on (net.ipv4.ip_forward=1, and
// net.ipv6.conf.all.forwarding=1 for IPv6 services): this package writes
// nftables only, no sysctls.
func Apply(nsFD int, services []Service) error {
	rss, err := build(services)
	if err != nil {
		return err
	}
	return send(nsFD, rss)
}

// send replaces the tables with rss in one transaction.
func send(nsFD int, rss []*ruleset) error {
	c, err := conn(nsFD)
	if err != nil {
		return err
	}
	delTables(c)
	for _, rs := range rss {
		c.AddTable(rs.table)
		c.AddChain(rs.prerouting)
		c.AddChain(rs.postrouting)
		for _, m := range rs.sets {
			if err := c.AddSet(m.set, m.elements); err != nil {
				return fmt.Errorf("nat: set %s %s: %w", rs.family.name, m.set.Name, err)
			}
		}
		for _, r := range rs.rules {
			c.AddRule(r)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nat: apply tables %s: %w", TableName, err)
	}
	return nil
}

// Remove deletes the TableName tables; it is not an error if there are none.
func Remove(nsFD int) error {
	c, err := conn(nsFD)
	if err != nil {
		return err
	}
	delTables(c)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nat: remove tables %s: %w", TableName, err)
	}
	return nil
}

// delTables queues the deletion of every family's table. Adding before
// deleting makes the delete valid whether or not the table existed, without
// a separate (racy) existence check.
func delTables(c *nftables.Conn) {
	for _, f := range families {
		t := table(f)
		c.AddTable(t)
		c.DelTable(t)
	}
}

// Rules reads back the services the kernel holds in the TableName tables:
// the IPv4 ones, then the IPv6 ones, each in the order they were applied;
// nil if there are no such tables. It reports the kernel's view, not the
// caller's input: each backend's Weight is its number of hash slots, and
// zero-weight backends are absent because the kernel never saw them.
func Rules(nsFD int) ([]Service, error) {
	c, err := conn(nsFD)
	if err != nil {
		return nil, err
	}
	// A dump rather than a lookup by name, so that "no table" is an empty
	// answer and not an error to tell apart from real failures.
	tables, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("nat: list tables: %w", err)
	}
	var out []Service
	for _, f := range families {
		i := slices.IndexFunc(tables, func(t *nftables.Table) bool { return t.Name == TableName && t.Family == f.table })
		if i < 0 {
			continue
		}
		s, err := tableRules(c, f, tables[i])
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

func tableRules(c *nftables.Conn, f family, t *nftables.Table) ([]Service, error) {
	pre, err := c.GetRules(t, &nftables.Chain{Name: preroutingChain, Table: t})
	if err != nil {
		return nil, fmt.Errorf("nat: read chain %s %s: %w", f.name, preroutingChain, err)
	}
	post, err := c.GetRules(t, &nftables.Chain{Name: postroutingChain, Table: t})
	if err != nil {
		return nil, fmt.Errorf("nat: read chain %s %s: %w", f.name, postroutingChain, err)
	}
	elements := func(name string) ([]nftables.SetElement, error) {
		s, err := c.GetSetByName(t, name)
		if err != nil {
			return nil, err
		}
		return c.GetSetElements(s)
	}
	return decode(f, pre, post, elements)
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
