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

var (
	vip   = netip.MustParseAddr("192.168.10.1")
	lbIP  = netip.MustParseAddr("10.0.2.1")
	realA = netip.MustParseAddr("10.0.2.2")
	realB = netip.MustParseAddr("10.0.3.2")
)

func TestBuildWeightedService(t *testing.T) {
	rs, err := build([]Service{{
		VIP: vip, Port: 8080, Proto: "tcp", SNAT: lbIP,
		Backends: []Backend{{realA, 3}, {netip.MustParseAddr("10.0.2.9"), 0}, {realB, 1}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rs.table.Name != TableName || rs.table.Family != nftables.TableFamilyIPv4 {
		t.Errorf("table = %+v", rs.table)
	}
	if len(rs.sets) != 2 {
		t.Fatalf("%d sets, want a backend map and a set of reals", len(rs.sets))
	}
	m := rs.sets[0]
	if !m.set.IsMap || m.set.KeyType != nftables.TypeMark || m.set.DataType != nftables.TypeIPAddr {
		t.Errorf("map = %+v", m.set)
	}
	want := []netip.Addr{realA, realA, realA, realB}
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
	hash := find[*expr.Hash](t, dnat)
	if hash.Modulus != 4 || hash.Length != 8 || hash.Seed != hashSeed || hash.Type != expr.HashTypeJenkins {
		t.Errorf("hash = %+v, want jhash over 8 bytes mod 4 with the fixed seed", hash)
	}
	if l := find[*expr.Lookup](t, dnat); l.SetName != m.set.Name || l.SetID != m.set.ID || !l.IsDestRegSet {
		t.Errorf("lookup = %+v, set %s/%d", l, m.set.Name, m.set.ID)
	}
	if n := find[*expr.NAT](t, dnat); n.Type != expr.NATTypeDestNAT {
		t.Errorf("prerouting NAT = %+v", n)
	}
	snat := rs.rules[1].Exprs
	if n := find[*expr.NAT](t, snat); n.Type != expr.NATTypeSourceNAT {
		t.Errorf("postrouting NAT = %+v", n)
	}
	if i := find[*expr.Immediate](t, snat); !reflect.DeepEqual(i.Data, lbIP.AsSlice()) {
		t.Errorf("snat to %v, want %s", i.Data, lbIP)
	}
	if b := find[*expr.Bitwise](t, snat); binaryutil.NativeEndian.Uint32(b.Mask) != ipsStatusDNAT {
		t.Errorf("ct status mask = %x, want the DNAT bit", b.Mask)
	}
	reals := rs.sets[1]
	if l := find[*expr.Lookup](t, snat); l.SetName != reals.set.Name || l.IsDestRegSet {
		t.Errorf("snat lookup = %+v, want membership in %s", l, reals.set.Name)
	}
	// The zero-weight backend is still a real whose flows are SNATed.
	if len(reals.elements) != 3 {
		t.Errorf("reals = %v, want all three backends", reals.elements)
	}
	for _, r := range rs.rules {
		if c, _ := userdata.GetString(r.UserData, userdata.TypeComment); c != "tcp 192.168.10.1:8080" {
			t.Errorf("rule comment %q", c)
		}
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

func TestBuildWithoutWeightsDropsAndWithoutSNATSkipsIt(t *testing.T) {
	rs, err := build([]Service{{VIP: vip, Port: 53, Proto: "udp", Backends: []Backend{{realA, 0}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.sets) != 0 || len(rs.rules) != 1 {
		t.Fatalf("sets %d rules %d, want no set and one rule", len(rs.sets), len(rs.rules))
	}
	if v := find[*expr.Verdict](t, rs.rules[0].Exprs); v.Kind != expr.VerdictDrop {
		t.Errorf("verdict = %+v, want drop", v)
	}
}

func TestBuildRejects(t *testing.T) {
	ok := Service{VIP: vip, Port: 80, Proto: "tcp", SNAT: lbIP, Backends: []Backend{{realA, 1}}}
	for name, mutate := range map[string]func(*Service){
		"IPv6 VIP":          func(s *Service) { s.VIP = netip.MustParseAddr("2001:db8::1") },
		"no VIP":            func(s *Service) { s.VIP = netip.Addr{} },
		"port 0":            func(s *Service) { s.Port = 0 },
		"sctp":              func(s *Service) { s.Proto = "sctp" },
		"IPv6 SNAT":         func(s *Service) { s.SNAT = netip.MustParseAddr("2001:db8::2") },
		"IPv6 backend":      func(s *Service) { s.Backends[0].Addr = netip.MustParseAddr("2001:db8::3") },
		"duplicate backend": func(s *Service) { s.Backends = append(s.Backends, Backend{realA, 2}) },
	} {
		s := ok
		s.Backends = []Backend{{realA, 1}}
		mutate(&s)
		if _, err := build([]Service{s}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := build([]Service{ok, ok}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate service: %v", err)
	}
	other := ok
	other.Proto = "udp"
	if _, err := build([]Service{ok, other}); err != nil {
		t.Errorf("same VIP:port over tcp and udp: %v", err)
	}
}

// decode must read back what build wrote: the kernel returns the same
// expressions, so this pins the format without one.
func TestDecodeReadsBuild(t *testing.T) {
	in := []Service{
		{VIP: vip, Port: 8080, Proto: "tcp", SNAT: lbIP, Backends: []Backend{{realA, 30}, {realB, 10}, {netip.MustParseAddr("10.0.2.7"), 0}}},
		{VIP: vip, Port: 8080, Proto: "udp", Backends: []Backend{{realB, 1}}},
		{VIP: netip.MustParseAddr("192.168.10.2"), Port: 443, Proto: "tcp", SNAT: lbIP, Backends: []Backend{{realA, 0}}},
	}
	rs, err := build(in)
	if err != nil {
		t.Fatal(err)
	}
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
	got, err := decode(pre, post, func(name string) ([]nftables.SetElement, error) { return maps[name], nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []Service{
		{VIP: vip, Port: 8080, Proto: "tcp", SNAT: lbIP, Backends: []Backend{{realA, 3}, {realB, 1}}},
		{VIP: vip, Port: 8080, Proto: "udp", Backends: []Backend{{realB, 1}}},
		{VIP: netip.MustParseAddr("192.168.10.2"), Port: 443, Proto: "tcp", SNAT: lbIP},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decode(build) =\n%+v\nwant\n%+v", got, want)
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
