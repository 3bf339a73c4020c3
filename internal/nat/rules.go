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

const (
	reg    = unix.NFT_REG_1
	regSrc = unix.NFT_REG32_01 // the 32-bit word after reg's first, for a concatenation
)

var protos = map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP}

type namedSet struct {
	set      *nftables.Set
	elements []nftables.SetElement
}

// ruleset is everything Apply sends, built without touching the kernel.
type ruleset struct {
	table       *nftables.Table
	prerouting  *nftables.Chain
	postrouting *nftables.Chain
	sets        []namedSet
	rules       []*nftables.Rule
}

func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
}

func build(services []Service) (*ruleset, error) {
	if err := validate(services); err != nil {
		return nil, err
	}
	t := table()
	rs := &ruleset{
		table: t,
		prerouting: &nftables.Chain{
			Name: preroutingChain, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest,
		},
		postrouting: &nftables.Chain{
			Name: postroutingChain, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
		},
	}
	for i, s := range services {
		// Each rule carries its service as a comment: nft list shows
		// which service a rule is, and Rules pairs the chains by it.
		comment := userdata.AppendString(nil, userdata.TypeComment, s.String())
		m, err := backendMap(t, fmt.Sprintf("backends_%d", i), uint32(2*i+1), s.Backends)
		if err != nil {
			return nil, fmt.Errorf("nat: %s: %w", s, err)
		}
		// With no backend to take new flows, they are dropped rather than
		// left unmatched, which would have the load balancer route VIP
		// traffic on as if it were its own.
		action := []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
		if m != nil {
			rs.sets = append(rs.sets, *m)
			action = dnatByHash(m.set, len(m.elements))
		}
		dnat := append(matchService(s), action...)
		rs.rules = append(rs.rules, &nftables.Rule{Table: t, Chain: rs.prerouting, Exprs: dnat, UserData: comment})

		if !s.SNAT.IsValid() || len(s.Backends) == 0 {
			continue
		}
		// Zero-weight backends stay in: their draining flows were SNATed
		// when they began, but listing them keeps the rule's meaning plain.
		reals := namedSet{set: &nftables.Set{Table: t, Name: fmt.Sprintf("reals_%d", i), ID: uint32(2*i + 2),
			Constant: true, KeyType: nftables.TypeIPAddr}}
		for _, b := range s.Backends {
			reals.elements = append(reals.elements, nftables.SetElement{Key: b.Addr.AsSlice()})
		}
		rs.sets = append(rs.sets, reals)
		rs.rules = append(rs.rules, &nftables.Rule{Table: t, Chain: rs.postrouting, Exprs: snat(s, reals.set), UserData: comment})
	}
	return rs, nil
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
		if !s.VIP.Is4() {
			return fmt.Errorf("nat: %s: VIP must be an IPv4 address", s)
		}
		if s.Port == 0 {
			return fmt.Errorf("nat: %s: port 0", s)
		}
		if _, ok := protos[s.Proto]; !ok {
			return fmt.Errorf("nat: %s: proto %q, want tcp or udp", s, s.Proto)
		}
		if s.SNAT.IsValid() && !s.SNAT.Is4() {
			return fmt.Errorf("nat: %s: SNAT address %s is not IPv4", s, s.SNAT)
		}
		k := key{s.VIP, s.Port, s.Proto}
		if seen[k] {
			return fmt.Errorf("nat: %s: listed twice", s)
		}
		seen[k] = true
		addrs := map[netip.Addr]bool{}
		for _, b := range s.Backends {
			if !b.Addr.Is4() {
				return fmt.Errorf("nat: %s: backend %s is not an IPv4 address", s, b.Addr)
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
func backendMap(t *nftables.Table, name string, id uint32, bs []Backend) (*namedSet, error) {
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
			KeyType: nftables.TypeMark, DataType: nftables.TypeIPAddr,
			KeyByteOrder: binaryutil.NativeEndian,
		},
		elements: elems,
	}, nil
}

// matchService matches the packets of a service: meta l4proto P, ip daddr
// VIP, th dport PORT. The protocol comes first because th is only defined
// once it is known.
func matchService(s Service) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{protos[s.Proto]}},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: s.VIP.AsSlice()},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binaryutil.BigEndian.PutUint16(s.Port)},
	}
}

// dnatByHash is `dnat to jhash ip saddr . th sport mod N seed S map @set`.
// The hash is stateless; a flow sticks to its backend because NAT rules see
// only the first packet of a connection and conntrack rewrites the rest.
func dnatByHash(set *nftables.Set, n int) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Payload{DestRegister: regSrc, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		// 8 bytes: the address, then the port zero-padded to a word.
		&expr.Hash{SourceRegister: reg, DestRegister: reg, Length: 8, Modulus: uint32(n),
			Seed: hashSeed, Type: expr.HashTypeJenkins},
		&expr.Lookup{SourceRegister: reg, DestRegister: reg, IsDestRegSet: true,
			SetName: set.Name, SetID: set.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg},
	}
}

// snat is `meta l4proto P ct status dnat ip daddr @reals th dport PORT snat
// to SNAT`. Only flows a DNAT rule rewrote, towards this service's backends,
// are rewritten, never the load balancer's own traffic.
//
// Matching the conntrack original tuple (`ct original ip daddr VIP`) would
// be tighter, but google/nftables v0.3.0 cannot read back the ct direction
// attribute (the kernel dumps a u8, the library wants a u32), which would
// make the table unreadable for Rules. The backend set is equivalent unless
// two services share a backend and port but want different SNAT addresses.
func snat(s Service, reals *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{protos[s.Proto]}},
		&expr.Ct{Key: expr.CtKeySTATUS, Register: reg},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsStatusDNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: make([]byte, 4)},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: reg, SetName: reals.Name, SetID: reals.ID},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binaryutil.BigEndian.PutUint16(s.Port)},
		&expr.Immediate{Register: reg, Data: s.SNAT.AsSlice()},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg},
	}
}

// decode reads services back from the two chains' rules, as build wrote
// them. elements fetches a backend map's contents by name.
func decode(pre, post []*nftables.Rule, elements func(name string) ([]nftables.SetElement, error)) ([]Service, error) {
	var out []Service
	for _, r := range pre {
		s := decodeRule(r)
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
		p := decodeRule(r)
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
func decodeRule(r *nftables.Rule) decoded {
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
			case e.Base == expr.PayloadBaseNetworkHeader && e.Offset == 16 && e.Len == 4:
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
