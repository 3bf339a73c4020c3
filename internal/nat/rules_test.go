package nat

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

func TestSlots(t *testing.T) {
	for _, c := range []struct {
		weights []uint32
		want    []int
	}{
		{nil, []int{}},
		{[]uint32{0, 0}, []int{0, 0}},
		{[]uint32{1}, []int{1}},
		{[]uint32{1, 1}, []int{1, 1}},
		{[]uint32{100, 100}, []int{1, 1}},
		{[]uint32{3, 1}, []int{3, 1}},
		{[]uint32{30, 0, 10}, []int{3, 0, 1}},
		{[]uint32{40, 24}, []int{5, 3}},
		{[]uint32{64, 0}, []int{1, 0}},
		{[]uint32{63, 1}, []int{63, 1}},
		// Reduced sum 1001 > 64: scaled, and the light backend keeps a slot.
		{[]uint32{1000, 1}, []int{63, 1}},
		{[]uint32{math.MaxUint32, 1, 1}, []int{62, 1, 1}},
		{[]uint32{50, 30, 20, 1}, []int{32, 19, 12, 1}},
	} {
		got, err := slots(c.weights)
		if err != nil {
			t.Errorf("slots(%v): %v", c.weights, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("slots(%v) = %v, want %v", c.weights, got, c.want)
		}
	}
}

func TestSlotsTooManyBackends(t *testing.T) {
	w := make([]uint32, MaxSlots+1)
	for i := range w {
		w[i] = 1
	}
	if _, err := slots(w); err == nil {
		t.Errorf("%d weighted backends accepted", len(w))
	}
	w[0] = 0 // now exactly MaxSlots take flows; zero weights do not count
	got, err := slots(w)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 0 || sum(got) != MaxSlots {
		t.Errorf("slots = %v", got)
	}
}

// Whatever the weights, the slots never exceed MaxSlots, every weighted
// backend keeps one, and each is within one slot of its exact share unless
// the one-slot minimum of the light ones pushed it further.
func TestSlotsProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		w := make([]uint32, 1+r.IntN(10))
		var total float64
		for i := range w {
			switch r.IntN(4) {
			case 0:
				w[i] = 0
			case 1:
				w[i] = uint32(r.IntN(5))
			default:
				w[i] = r.Uint32() >> r.IntN(32)
			}
			total += float64(w[i])
		}
		got, err := slots(w)
		if err != nil {
			t.Fatalf("slots(%v): %v", w, err)
		}
		n := sum(got)
		if n > MaxSlots {
			t.Fatalf("slots(%v) = %v: %d slots", w, got, n)
		}
		minimums := 0
		for i := range w {
			if (w[i] == 0) != (got[i] == 0) {
				t.Fatalf("slots(%v) = %v: zero weight and zero slots must coincide", w, got)
			}
			if w[i] != 0 && float64(w[i])/total*MaxSlots < 1 {
				minimums++
			}
		}
		for i := range w {
			if w[i] == 0 || n < MaxSlots {
				continue // exact reduction, checked by the table above
			}
			ideal := float64(w[i]) / total * MaxSlots
			if d := math.Abs(float64(got[i]) - ideal); d > 1+float64(minimums) {
				t.Fatalf("slots(%v) = %v: backend %d has %d slots for an ideal %.2f", w, got, i, got[i], ideal)
			}
		}
	}
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// addrs are the addresses of one family the tests use, in the kernel
// tests' lab (see kernel_test.go).
type addrs struct {
	name                                string
	vip, client, lb, realA, realB, idle netip.Addr
}

var (
	v4 = addrs{"IPv4", netip.MustParseAddr("192.168.10.1"), netip.MustParseAddr("10.0.1.2"),
		netip.MustParseAddr("10.0.2.1"), netip.MustParseAddr("10.0.2.2"), netip.MustParseAddr("10.0.3.2"),
		netip.MustParseAddr("10.0.2.9")}
	v6 = addrs{"IPv6", netip.MustParseAddr("fd00:10::1"), netip.MustParseAddr("fd00:1::2"),
		netip.MustParseAddr("fd00:2::1"), netip.MustParseAddr("fd00:2::2"), netip.MustParseAddr("fd00:3::2"),
		netip.MustParseAddr("fd00:2::9")}
	bothFamilies = []addrs{v4, v6}
)

// service is a service of f on port with f's SNAT address.
func (f addrs) service(proto string, backends ...Backend) Service {
	return Service{VIP: f.vip, Port: port, Proto: proto, SNAT: f.lb, Backends: backends}
}

// The expressions of each family, spelled out from the IPv4 and IPv6
// header layouts rather than taken from the code under test.
func TestBuildWeightedService(t *testing.T) {
	for _, c := range []struct {
		f            addrs
		table        nftables.TableFamily
		nfproto      uint32
		addrType     nftables.SetDatatype
		saddr, daddr uint32
		addrLen      uint32
		hashLen      uint32
		portReg      uint32
		comment      string
	}{
		{v4, nftables.TableFamilyIPv4, unix.NFPROTO_IPV4, nftables.TypeIPAddr, 12, 16, 4, 8, unix.NFT_REG32_01, "tcp 192.168.10.1:8080"},
		{v6, nftables.TableFamilyIPv6, unix.NFPROTO_IPV6, nftables.TypeIP6Addr, 8, 24, 16, 20, unix.NFT_REG32_04, "tcp [fd00:10::1]:8080"},
	} {
		t.Run(c.f.name, func(t *testing.T) {
			f := c.f
			rss, err := build([]Service{f.service("tcp", Backend{f.realA, 3}, Backend{f.idle, 0}, Backend{f.realB, 1})})
			if err != nil {
				t.Fatal(err)
			}
			if len(rss) != 1 {
				t.Fatalf("%d tables, want one", len(rss))
			}
			rs := rss[0]
			if rs.table.Name != TableName || rs.table.Family != c.table {
				t.Errorf("table = %+v", rs.table)
			}
			if len(rs.sets) != 2 {
				t.Fatalf("%d sets, want a backend map and a set of reals", len(rs.sets))
			}
			m := rs.sets[0]
			if !m.set.IsMap || m.set.KeyType != nftables.TypeMark || m.set.DataType != c.addrType {
				t.Errorf("map = %+v", m.set)
			}
			want := []netip.Addr{f.realA, f.realA, f.realA, f.realB}
			if len(m.elements) != len(want) {
				t.Fatalf("%d slots, want %d", len(m.elements), len(want))
			}
			for i, e := range m.elements {
				if k := binaryutil.NativeEndian.Uint32(e.Key); k != uint32(i) {
					t.Errorf("slot %d has key %d", i, k)
				}
				if a, _ := netip.AddrFromSlice(e.Val); a != want[i] {
					t.Errorf("slot %d -> %s, want %s", i, a, want[i])
				}
			}

			if len(rs.rules) != 2 || rs.rules[0].Chain != rs.prerouting || rs.rules[1].Chain != rs.postrouting {
				t.Fatalf("rules = %+v, want one DNAT then one SNAT", rs.rules)
			}
			if *rs.prerouting.Hooknum != *nftables.ChainHookPrerouting || *rs.prerouting.Priority != *nftables.ChainPriorityNATDest ||
				*rs.postrouting.Hooknum != *nftables.ChainHookPostrouting || *rs.postrouting.Priority != *nftables.ChainPriorityNATSource {
				t.Error("chains are not on the dstnat/srcnat hooks")
			}
			dnat := rs.rules[0].Exprs
			loads := findAll[*expr.Payload](dnat)
			if len(loads) != 4 {
				t.Fatalf("DNAT payload loads = %+v, want daddr, dport, saddr, sport", loads)
			}
			for i, w := range []expr.Payload{
				{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: c.daddr, Len: c.addrLen},
				{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: c.saddr, Len: c.addrLen},
				{DestRegister: c.portReg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
			} {
				if *loads[i] != w {
					t.Errorf("DNAT load %d = %+v, want %+v", i, *loads[i], w)
				}
			}
			if cmps := findAll[*expr.Cmp](dnat); len(cmps) != 3 || !reflect.DeepEqual(cmps[1].Data, f.vip.AsSlice()) {
				t.Errorf("DNAT compares %+v, want the VIP second", cmps)
			}
			hash := find[*expr.Hash](t, dnat)
			if hash.SourceRegister != reg || hash.Modulus != 4 || hash.Length != c.hashLen || hash.Seed != hashSeed || hash.Type != expr.HashTypeJenkins {
				t.Errorf("hash = %+v, want jhash over address . port (%d bytes) mod 4 with the fixed seed", hash, c.hashLen)
			}
			if l := find[*expr.Lookup](t, dnat); l.SetName != m.set.Name || l.SetID != m.set.ID || !l.IsDestRegSet {
				t.Errorf("lookup = %+v, set %s/%d", l, m.set.Name, m.set.ID)
			}
			if n := find[*expr.NAT](t, dnat); n.Type != expr.NATTypeDestNAT || n.Family != c.nfproto || n.RegAddrMin != reg {
				t.Errorf("prerouting NAT = %+v", n)
			}
			snat := rs.rules[1].Exprs
			if n := find[*expr.NAT](t, snat); n.Type != expr.NATTypeSourceNAT || n.Family != c.nfproto {
				t.Errorf("postrouting NAT = %+v", n)
			}
			if p := find[*expr.Payload](t, snat[5:]); p.Base != expr.PayloadBaseNetworkHeader || p.Offset != c.daddr || p.Len != c.addrLen {
				t.Errorf("SNAT matches on %+v, want the destination address", p)
			}
			if i := find[*expr.Immediate](t, snat); !reflect.DeepEqual(i.Data, f.lb.AsSlice()) {
				t.Errorf("snat to %v, want %s", i.Data, f.lb)
			}
			if b := find[*expr.Bitwise](t, snat); binaryutil.NativeEndian.Uint32(b.Mask) != ipsStatusDNAT {
				t.Errorf("ct status mask = %x, want the DNAT bit", b.Mask)
			}
			reals := rs.sets[1]
			if reals.set.KeyType != c.addrType {
				t.Errorf("reals key type = %+v", reals.set.KeyType)
			}
			if l := find[*expr.Lookup](t, snat); l.SetName != reals.set.Name || l.IsDestRegSet {
				t.Errorf("snat lookup = %+v, want membership in %s", l, reals.set.Name)
			}
			// The zero-weight backend is still a real whose flows are SNATed.
			if len(reals.elements) != 3 {
				t.Errorf("reals = %v, want all three backends", reals.elements)
			}
			for _, r := range rs.rules {
				if got, _ := userdata.GetString(r.UserData, userdata.TypeComment); got != c.comment {
					t.Errorf("rule comment %q, want %q", got, c.comment)
				}
			}
		})
	}
}

func find[T expr.Any](t *testing.T, exprs []expr.Any) T {
	t.Helper()
	for _, e := range exprs {
		if x, ok := e.(T); ok {
			return x
		}
	}
	var zero T
	t.Fatalf("no %T in %v", zero, exprs)
	return zero
}

func findAll[T expr.Any](exprs []expr.Any) []T {
	var out []T
	for _, e := range exprs {
		if x, ok := e.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

// Services of both families go to a table each, IPv4 first, whatever
// order they come in; set IDs stay unique across the one transaction.
func TestBuildSplitsFamilies(t *testing.T) {
	rss, err := build([]Service{
		v6.service("tcp", Backend{v6.realA, 1}),
		v4.service("tcp", Backend{v4.realA, 1}),
		v6.service("udp", Backend{v6.realB, 1}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rss) != 2 || rss[0].table.Family != nftables.TableFamilyIPv4 || rss[1].table.Family != nftables.TableFamilyIPv6 {
		t.Fatalf("tables = %+v, want ip then ip6", rss)
	}
	ids := map[uint32]bool{}
	for _, rs := range rss {
		names := map[string]bool{}
		for _, m := range rs.sets {
			if ids[m.set.ID] || names[m.set.Name] {
				t.Errorf("set %s/%d used twice", m.set.Name, m.set.ID)
			}
			ids[m.set.ID], names[m.set.Name] = true, true
			if m.set.Table != rs.table {
				t.Errorf("set %s is not in its service's table", m.set.Name)
			}
		}
		for _, r := range rs.rules {
			if r.Table != rs.table {
				t.Errorf("rule %v is not in its service's table", r.UserData)
			}
		}
	}
	if len(rss[0].rules) != 2 || len(rss[1].rules) != 4 {
		t.Errorf("rules: %d ip, %d ip6; want 2 and 4", len(rss[0].rules), len(rss[1].rules))
	}
	if rss, err := build(nil); err != nil || len(rss) != 0 {
		t.Errorf("build(nil) = %v, %v; want no table", rss, err)
	}
}

func TestBuildWithoutWeightsDropsAndWithoutSNATSkipsIt(t *testing.T) {
	for _, f := range bothFamilies {
		rss, err := build([]Service{{VIP: f.vip, Port: 53, Proto: "udp", Backends: []Backend{{f.realA, 0}}}})
		if err != nil {
			t.Fatal(err)
		}
		rs := rss[0]
		if len(rs.sets) != 0 || len(rs.rules) != 1 {
			t.Fatalf("%s: sets %d rules %d, want no set and one rule", f.name, len(rs.sets), len(rs.rules))
		}
		if v := find[*expr.Verdict](t, rs.rules[0].Exprs); v.Kind != expr.VerdictDrop {
			t.Errorf("%s: verdict = %+v, want drop", f.name, v)
		}
	}
}

func TestBuildRejects(t *testing.T) {
	for name, mutate := range map[string]func(*Service){
		"no VIP":                    func(s *Service) { s.VIP = netip.Addr{} },
		"IPv4-mapped VIP":           func(s *Service) { s.VIP = netip.MustParseAddr("::ffff:192.168.10.1") },
		"port 0":                    func(s *Service) { s.Port = 0 },
		"sctp":                      func(s *Service) { s.Proto = "sctp" },
		"IPv6 SNAT for IPv4 VIP":    func(s *Service) { s.SNAT = v6.lb },
		"IPv6 backend for IPv4 VIP": func(s *Service) { s.Backends[0].Addr = v6.realA },
		"IPv4 SNAT for IPv6 VIP":    func(s *Service) { s.VIP = v6.vip; s.Backends[0].Addr = v6.realA },
		"IPv4 backend for IPv6 VIP": func(s *Service) { s.VIP, s.SNAT = v6.vip, v6.lb },
		"IPv4-mapped backend": func(s *Service) {
			s.VIP, s.SNAT, s.Backends[0].Addr = v6.vip, v6.lb, netip.MustParseAddr("::ffff:10.0.2.2")
		},
		"no backend address": func(s *Service) { s.Backends[0].Addr = netip.Addr{} },
		"duplicate backend":  func(s *Service) { s.Backends = append(s.Backends, Backend{v4.realA, 2}) },
	} {
		s := v4.service("tcp", Backend{v4.realA, 1})
		mutate(&s)
		if _, err := build([]Service{s}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, f := range bothFamilies {
		ok := f.service("tcp", Backend{f.realA, 1})
		if _, err := build([]Service{ok, ok}); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("%s: duplicate service: %v", f.name, err)
		}
		other := ok
		other.Proto = "udp"
		if _, err := build([]Service{ok, other}); err != nil {
			t.Errorf("%s: same VIP:port over tcp and udp: %v", f.name, err)
		}
	}
}

// decode must read back what build wrote: the kernel returns the same
// expressions, so this pins the format without one.
func TestDecodeReadsBuild(t *testing.T) {
	var in, want []Service
	for _, f := range []addrs{v6, v4} {
		other := f.vip.Next()
		in = append(in,
			f.service("tcp", Backend{f.realA, 30}, Backend{f.realB, 10}, Backend{f.idle, 0}),
			Service{VIP: f.vip, Port: port, Proto: "udp", Backends: []Backend{{f.realB, 1}}},
			Service{VIP: other, Port: 443, Proto: "tcp", SNAT: f.lb, Backends: []Backend{{f.realA, 0}}},
		)
	}
	// The kernel's view: slots for weights, no zero weights, IPv4 first.
	for _, f := range []addrs{v4, v6} {
		want = append(want,
			f.service("tcp", Backend{f.realA, 3}, Backend{f.realB, 1}),
			Service{VIP: f.vip, Port: port, Proto: "udp", Backends: []Backend{{f.realB, 1}}},
			Service{VIP: f.vip.Next(), Port: 443, Proto: "tcp", SNAT: f.lb},
		)
	}
	rss, err := build(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []Service
	for _, rs := range rss {
		var pre, post []*nftables.Rule
		for _, r := range rs.rules {
			if r.Chain == rs.prerouting {
				pre = append(pre, r)
			} else {
				post = append(post, r)
			}
		}
		maps := map[string][]nftables.SetElement{}
		for _, m := range rs.sets {
			maps[m.set.Name] = m.elements
		}
		s, err := decode(rs.family, pre, post, func(name string) ([]nftables.SetElement, error) { return maps[name], nil })
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s...)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decode(build) =\n%+v\nwant\n%+v", got, want)
	}
}

// A rule of the other family's shape is not read as a service: decode
// checks offsets, not just expression kinds.
func TestDecodeRefusesOtherFamily(t *testing.T) {
	rss, err := build([]Service{v6.service("tcp", Backend{v6.realA, 1})})
	if err != nil {
		t.Fatal(err)
	}
	pre := rss[0].rules[:1]
	if _, err := decode(ipv4, pre, nil, func(string) ([]nftables.SetElement, error) { return nil, nil }); err == nil {
		t.Error("an ip6 rule decoded as an ip one")
	}
}

func TestNoNamespaceFD(t *testing.T) {
	if err := Apply(0, nil); err == nil {
		t.Error("Apply on fd 0 accepted: it would program the caller's own namespace")
	}
	if err := Remove(-1); err == nil {
		t.Error("Remove on fd -1 accepted")
	}
}
