package nat

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// hashSeed is fixed rather than left to the kernel (which picks a random
// seed when none is given) so that a given client address and port always
// land on the same backend across Apply calls and lab runs, which makes
// benchmark runs comparable and failures reproducible.
const hashSeed = 0x64737231

// ipsStatusDNAT is IPS_DST_NAT from linux/netfilter/nf_conntrack_common.h:
// conntrack sets it on a flow once a DNAT rule has rewritten it.
const ipsStatusDNAT = 1 << 5

// reg is the 16-byte register every expression works in: wide enough for
// an IPv6 address.
const reg = unix.NFT_REG_1

// family is what the rules of one address family differ in: their table,
// where the addresses sit in the network header, and how wide they are.
type family struct {
	name         string
	table        nftables.TableFamily
	nfproto      uint32 // the NAT expression's family
	addrType     nftables.SetDatatype
	saddr, daddr uint32 // offsets in the network header
	addrLen      uint32
	// portReg is the first 32-bit register after the address in reg, where
	// the source port goes to be hashed together with the address.
	portReg uint32
}

var (
	ipv4 = family{name: "ip", table: nftables.TableFamilyIPv4, nfproto: unix.NFPROTO_IPV4,
		addrType: nftables.TypeIPAddr, saddr: 12, daddr: 16, addrLen: 4, portReg: unix.NFT_REG32_01}
	ipv6 = family{name: "ip6", table: nftables.TableFamilyIPv6, nfproto: unix.NFPROTO_IPV6,
		addrType: nftables.TypeIP6Addr, saddr: 8, daddr: 24, addrLen: 16, portReg: unix.NFT_REG32_04}
	// families is every family Apply owns a table in, in the order Rules
	// reports their services.
	families = []family{ipv4, ipv6}
)

func familyOf(a netip.Addr) family {
	if a.Is6() {
		return ipv6
	}
	return ipv4
}

var protos = map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP}

type namedSet struct {
	set      *nftables.Set
	elements []nftables.SetElement
}

// ruleset is one family's table as Apply sends it, built without touching
// the kernel.
type ruleset struct {
	family      family
	table       *nftables.Table
	prerouting  *nftables.Chain
	postrouting *nftables.Chain
	sets        []namedSet
	rules       []*nftables.Rule
	services    int // added so far, numbering their sets
}

func table(f family) *nftables.Table {
	return &nftables.Table{Name: TableName, Family: f.table}
}

// build returns a ruleset for each family that has services, IPv4 first.
func build(services []Service) ([]*ruleset, error) {
	if err := validate(services); err != nil {
		return nil, err
	}
	var out []*ruleset
	// Set IDs name sets within the one transaction Apply sends, across
	// both tables, so they are numbered across families.
	var setID uint32
	for _, f := range families {
		var rs *ruleset
		for _, s := range services {
			if familyOf(s.VIP) != f {
				continue
			}
			if rs == nil {
				rs = newRuleset(f)
				out = append(out, rs)
			}
			if err := rs.add(s, &setID); err != nil {
				return nil, fmt.Errorf("nat: %s: %w", s, err)
			}
		}
	}
	return out, nil
}

func newRuleset(f family) *ruleset {
	t := table(f)
	return &ruleset{
		family: f,
		table:  t,
		prerouting: &nftables.Chain{
			Name: preroutingChain, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest,
		},
		postrouting: &nftables.Chain{
			Name: postroutingChain, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
		},
	}
}

// add writes the rules and sets of one service of rs's family. setID is
// the last set ID used in the transaction.
func (rs *ruleset) add(s Service, setID *uint32) error {
	f, t, i := rs.family, rs.table, rs.services
	rs.services++
	// Each rule carries its service as a comment: nft list shows which
	// service a rule is, and Rules pairs the chains by it.
	comment := userdata.AppendString(nil, userdata.TypeComment, s.String())
	*setID++
	m, err := backendMap(t, f, fmt.Sprintf("backends_%d", i), *setID, s.Backends)
	if err != nil {
		return err
	}
	// With no backend to take new flows, they are dropped rather than
	// left unmatched, which would have the load balancer route VIP
	// traffic on as if it were its own.
	action := []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
	if m != nil {
		rs.sets = append(rs.sets, *m)
		action = dnatByHash(f, m.set, len(m.elements))
	}
	dnat := append(matchService(f, s), action...)
	rs.rules = append(rs.rules, &nftables.Rule{Table: t, Chain: rs.prerouting, Exprs: dnat, UserData: comment})

	if !s.SNAT.IsValid() || len(s.Backends) == 0 {
		return nil
	}
	// Zero-weight backends stay in: their draining flows were SNATed
	// when they began, but listing them keeps the rule's meaning plain.
	*setID++
	reals := namedSet{set: &nftables.Set{Table: t, Name: fmt.Sprintf("reals_%d", i), ID: *setID,
		Constant: true, KeyType: f.addrType}}
	for _, b := range s.Backends {
		reals.elements = append(reals.elements, nftables.SetElement{Key: b.Addr.AsSlice()})
	}
	rs.sets = append(rs.sets, reals)
	rs.rules = append(rs.rules, &nftables.Rule{Table: t, Chain: rs.postrouting, Exprs: snat(f, s, reals.set), UserData: comment})
	return nil
}

func (s Service) String() string {
	return fmt.Sprintf("%s %s", s.Proto, netip.AddrPortFrom(s.VIP, s.Port))
}

func validate(services []Service) error {
	type key struct {
		vip   netip.Addr
		port  uint16
		proto string
	}
	seen := map[key]bool{}
	for _, s := range services {
		// A mapped address would be matched in neither family's headers.
		if !s.VIP.IsValid() || s.VIP.Is4In6() {
			return fmt.Errorf("nat: %s: VIP must be an IPv4 or IPv6 address", s)
		}
		f := familyOf(s.VIP)
		if s.Port == 0 {
			return fmt.Errorf("nat: %s: port 0", s)
		}
		if _, ok := protos[s.Proto]; !ok {
			return fmt.Errorf("nat: %s: proto %q, want tcp or udp", s, s.Proto)
		}
		// NAT translates addresses, never families: a backend or SNAT
		// address of the other family could not be written into the header.
		if s.SNAT.IsValid() && (familyOf(s.SNAT) != f || s.SNAT.Is4In6()) {
			return fmt.Errorf("nat: %s: SNAT address %s is not of the VIP's family", s, s.SNAT)
		}
		k := key{s.VIP, s.Port, s.Proto}
		if seen[k] {
			return fmt.Errorf("nat: %s: listed twice", s)
		}
		seen[k] = true
		addrs := map[netip.Addr]bool{}
		for _, b := range s.Backends {
			if !b.Addr.IsValid() || familyOf(b.Addr) != f || b.Addr.Is4In6() {
				return fmt.Errorf("nat: %s: backend %s is not of the VIP's family", s, b.Addr)
			}
			if addrs[b.Addr] {
				return fmt.Errorf("nat: %s: backend %s listed twice", s, b.Addr)
			}
			addrs[b.Addr] = true
		}
	}
	return nil
}

// backendMap builds the slot -> backend map the hash indexes, or nil when no
// backend has a weight. A backend fills as many consecutive slots as its
// weight resolves to; which slots they are does not matter to a hash.
//
// The set gets its transaction ID here rather than from AddSet, so the
// lookup built alongside it already refers to it.
func backendMap(t *nftables.Table, f family, name string, id uint32, bs []Backend) (*namedSet, error) {
	weights := make([]uint32, len(bs))
	for i, b := range bs {
		weights[i] = b.Weight
	}
	n, err := slots(weights)
	if err != nil {
		return nil, err
	}
	var elems []nftables.SetElement
	for i, b := range bs {
		for range n[i] {
			elems = append(elems, nftables.SetElement{
				// The hash expression writes a host-order u32.
				Key: binaryutil.NativeEndian.PutUint32(uint32(len(elems))),
				Val: b.Addr.AsSlice(),
			})
		}
	}
	if len(elems) == 0 {
		return nil, nil
	}
	return &namedSet{
		set: &nftables.Set{
			// "mark" is nft's host-order 32-bit type, so nft list shows
			// the slots as 0, 1, 2. Not Constant: google/nftables then
			// labels the keys big-endian and they show byte-swapped. The
			// map is never edited in place anyway; Apply replaces it.
			Table: t, Name: name, ID: id, IsMap: true,
			KeyType: nftables.TypeMark, DataType: f.addrType,
			KeyByteOrder: binaryutil.NativeEndian,
		},
		elements: elems,
	}, nil
}

// matchService matches the packets of a service: meta l4proto P, ip (or
// ip6) daddr VIP, th dport PORT. The protocol comes first because th is
// only defined once it is known; meta l4proto, unlike the IPv6 next header
// field, sees past extension headers.
func matchService(f family, s Service) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{protos[s.Proto]}},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddr, Len: f.addrLen},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: s.VIP.AsSlice()},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binaryutil.BigEndian.PutUint16(s.Port)},
	}
}

// dnatByHash is `dnat to jhash ip saddr . th sport mod N seed S map @set`
// (ip6 saddr for IPv6). The hash is stateless; a flow sticks to its backend
// because NAT rules see only the first packet of a connection and conntrack
// rewrites the rest.
func dnatByHash(f family, set *nftables.Set, n int) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: f.saddr, Len: f.addrLen},
		&expr.Payload{DestRegister: f.portReg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		// The address, then the port zero-padded to a word.
		&expr.Hash{SourceRegister: reg, DestRegister: reg, Length: f.addrLen + 4, Modulus: uint32(n),
			Seed: hashSeed, Type: expr.HashTypeJenkins},
		&expr.Lookup{SourceRegister: reg, DestRegister: reg, IsDestRegSet: true,
			SetName: set.Name, SetID: set.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.nfproto, RegAddrMin: reg},
	}
}

// snat is `meta l4proto P ct status dnat ip daddr @reals th dport PORT snat
// to SNAT` (ip6 daddr for IPv6). Only flows a DNAT rule rewrote, towards this service's backends,
// are rewritten, never the load balancer's own traffic.
//
// Matching the conntrack original tuple (`ct original ip daddr VIP`) would
// be tighter, but google/nftables v0.3.0 cannot read back the ct direction
// attribute (the kernel dumps a u8, the library wants a u32), which would
// make the table unreadable for Rules. The backend set is equivalent unless
// two services share a backend and port but want different SNAT addresses.
func snat(f family, s Service, reals *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{protos[s.Proto]}},
		&expr.Ct{Key: expr.CtKeySTATUS, Register: reg},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsStatusDNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: make([]byte, 4)},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddr, Len: f.addrLen},
		&expr.Lookup{SourceRegister: reg, SetName: reals.Name, SetID: reals.ID},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binaryutil.BigEndian.PutUint16(s.Port)},
		&expr.Immediate{Register: reg, Data: s.SNAT.AsSlice()},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: f.nfproto, RegAddrMin: reg},
	}
}

// decode reads services back from the two chains' rules of f's table, as
// build wrote them. elements fetches a backend map's contents by name.
func decode(f family, pre, post []*nftables.Rule, elements func(name string) ([]nftables.SetElement, error)) ([]Service, error) {
	var out []Service
	for _, r := range pre {
		s := decodeRule(f, r)
		if !s.VIP.IsValid() || s.Port == 0 || s.Proto == "" || !s.action {
			return nil, fmt.Errorf("nat: %s rule %d: not a rule this package writes", preroutingChain, r.Handle)
		}
		if s.mapName != "" {
			elems, err := elements(s.mapName)
			if err != nil {
				return nil, fmt.Errorf("nat: %s: map %s: %w", s.Service, s.mapName, err)
			}
			s.Backends = weightsFromSlots(elems)
		}
		out = append(out, s.Service)
	}
	for _, r := range post {
		p := decodeRule(f, r)
		i := slices.IndexFunc(out, func(s Service) bool { return s.String() == p.comment })
		if i < 0 || !p.SNAT.IsValid() || !p.action {
			return nil, fmt.Errorf("nat: %s rule %d (%q): no matching DNAT rule", postroutingChain, r.Handle, p.comment)
		}
		out[i].SNAT = p.SNAT
	}
	return out, nil
}

type decoded struct {
	Service
	comment string
	mapName string // the lookup that yields a backend, not a membership test
	action  bool   // NAT or drop
}

// decodeRule recognises the matches and actions build writes, in either
// chain, by remembering what the last expression loaded into the register.
func decodeRule(f family, r *nftables.Rule) decoded {
	var d decoded
	d.comment, _ = userdata.GetString(r.UserData, userdata.TypeComment)
	var loaded string
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Meta:
			loaded = ""
			if e.Key == expr.MetaKeyL4PROTO {
				loaded = "proto"
			}
		case *expr.Payload:
			loaded = ""
			switch {
			case e.Base == expr.PayloadBaseNetworkHeader && e.Offset == f.daddr && e.Len == f.addrLen:
				loaded = "daddr"
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == 2 && e.Len == 2:
				loaded = "dport"
			}
		case *expr.Cmp:
			if e.Op != expr.CmpOpEq {
				continue
			}
			switch loaded {
			case "proto":
				for name, p := range protos {
					if len(e.Data) == 1 && e.Data[0] == p {
						d.Proto = name
					}
				}
			case "daddr":
				d.VIP, _ = netip.AddrFromSlice(e.Data)
			case "dport":
				if len(e.Data) == 2 {
					d.Port = uint16(e.Data[0])<<8 | uint16(e.Data[1])
				}
			}
		case *expr.Immediate:
			d.SNAT, _ = netip.AddrFromSlice(e.Data)
		case *expr.Lookup:
			if e.IsDestRegSet {
				d.mapName = e.SetName
			}
		case *expr.NAT:
			d.action = true
		case *expr.Verdict:
			d.action = d.action || e.Kind == expr.VerdictDrop
		}
	}
	return d
}

// weightsFromSlots counts each backend's slots, listing backends in the
// order of their first slot (which is the order Apply was given).
func weightsFromSlots(elems []nftables.SetElement) []Backend {
	slices.SortFunc(elems, func(a, b nftables.SetElement) int {
		return cmp.Compare(binaryutil.NativeEndian.Uint32(a.Key), binaryutil.NativeEndian.Uint32(b.Key))
	})
	var out []Backend
	for _, e := range elems {
		a, ok := netip.AddrFromSlice(e.Val)
		if !ok {
			continue
		}
		i := slices.IndexFunc(out, func(b Backend) bool { return b.Addr == a })
		if i < 0 {
			out = append(out, Backend{Addr: a})
			i = len(out) - 1
		}
		out[i].Weight++
	}
	return out
}
