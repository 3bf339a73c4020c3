package prog

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"gopkg.in/yaml.v3"
)

// The examples are tested the way `dsrlab up` uses them: compiled from
// source by Build, the program named in lab.yaml opened, its maps filled
// from lab.yaml's entries with the lab's own addresses, then packets run
// through the kernel (BPF_PROG_TEST_RUN).

const (
	xdpDrop = 1
	xdpTX   = 3
)

var vip = netip.MustParseAddr("192.168.10.1")

// example is an examples/<dir>/lab.yaml with its katran program loaded.
type example struct {
	obj     *Object
	loaded  *Loaded
	resolve func(ref string, size int) ([]byte, error)
	addr    func(ref string) netip.Addr
	mac     func(ref string) []byte
}

func loadExample(t *testing.T, dir string) *example {
	t.Helper()
	requireRoot(t)
	requireClang(t)
	path := filepath.Join("..", "..", "examples", dir, "lab.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lab struct {
		Nodes map[string]struct {
			Program *struct {
				Source string
				Name   string
				Maps   map[string][]struct{ Key, Value yaml.Node }
			}
		}
		Links []struct {
			Endpoints []string
			IPv4      []string
		}
	}
	if err := yaml.Unmarshal(data, &lab); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ex := &example{}
	addrs := map[string]netip.Addr{}
	for _, l := range lab.Links {
		for i, ep := range l.Endpoints {
			addrs[ep] = netip.MustParsePrefix(l.IPv4[i]).Addr()
		}
	}
	ex.addr = func(ref string) netip.Addr {
		a, ok := addrs[ref]
		if !ok {
			t.Fatalf("%s: no interface %s", path, ref)
		}
		return a
	}
	// The lab's MACs are assigned at run time: any distinct ones will do.
	ex.mac = func(ref string) []byte {
		a := ex.addr(ref).As4()
		return []byte{0x02, 0x00, a[0], a[1], a[2], a[3]}
	}
	ex.resolve = func(ref string, size int) ([]byte, error) {
		a, ok := addrs[ref]
		switch {
		case !ok:
			return nil, fmt.Errorf("%s names no interface", ref)
		case size == 4:
			return a.AsSlice(), nil
		case size == 6:
			return ex.mac(ref), nil
		}
		return nil, fmt.Errorf("%s: no %d-byte address", ref, size)
	}

	katran := lab.Nodes["katran"].Program
	if katran == nil {
		t.Fatalf("%s: katran has no program", path)
	}
	obj, err := Build(context.Background(), filepath.Join(filepath.Dir(path), katran.Source), nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if ex.obj, err = Open(obj, "", katran.Name); err != nil {
		t.Fatal(err)
	}
	entries := map[string][]Entry{}
	for name, es := range katran.Maps {
		for _, e := range es {
			enc, err := ex.obj.Encode(name, &e.Key, &e.Value, ex.resolve)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			entries[name] = append(entries[name], enc)
		}
	}
	ex.loaded = load(t, ex.obj, entries)
	return ex
}

// run passes one packet through the program once (DESIGN.md pitfall 7: a
// repeat would see the already encapsulated packet).
func (ex *example) run(t *testing.T, pkt []byte) (uint32, []byte) {
	t.Helper()
	opts := &ebpf.RunOptions{Data: pkt, DataOut: make([]byte, len(pkt)+256), Repeat: 1}
	ret, err := ex.loaded.Program.Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	return ret, opts.DataOut
}

// packet is an Ethernet frame from the router to katran carrying IPv4 with
// a TCP or UDP header (the ports are what the balancers read) and a payload.
type packet struct {
	src, dst   netip.Addr
	proto      uint8
	sport, dpt uint16
}

func (p packet) bytes(ex *example) []byte {
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4[0:], p.sport)
	binary.BigEndian.PutUint16(l4[2:], p.dpt)
	l4 = append(l4, "hello\n"...)
	ip := ipv4Header(p.src, p.dst, p.proto, 63, len(l4))
	eth := append(ex.mac("katran:eth0"), ex.mac("router:eth0")...)
	eth = append(eth, 0x08, 0x00)
	return append(append(eth, ip...), l4...)
}

func ipv4Header(src, dst netip.Addr, proto uint8, ttl uint8, payload int) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+payload))
	h[8], h[9] = ttl, proto
	copy(h[12:], src.AsSlice())
	copy(h[16:], dst.AsSlice())
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return h
}

// checksum is RFC 1071's, written independently of the C under test.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// encapsulated is what a balancer must send: Ethernet toward the router, an
// outer IPv4 header (IPIP, TTL 64, no options, no fragmentation), and the
// original IP packet untouched.
func encapsulated(ex *example, in []byte, outerSrc, outerDst netip.Addr) []byte {
	inner := in[14:]
	out := append(ex.mac("router:eth0"), ex.mac("katran:eth0")...)
	out = append(out, 0x08, 0x00)
	out = append(out, ipv4Header(outerSrc, outerDst, 4, 64, len(inner))...)
	return append(out, inner...)
}

const (
	tcp = 6
	udp = 17
)

func TestExampleMinimal(t *testing.T) {
	ex := loadExample(t, "xdp-lb-minimal")
	client := ex.addr("client:eth0")
	real := ex.addr("real:eth0")

	in := packet{client, vip, tcp, 40612, 50007}.bytes(ex)
	ret, out := ex.run(t, in)
	if ret != xdpTX {
		t.Fatalf("VIP packet: verdict %d, want XDP_TX", ret)
	}
	// The tutorial's outer source is the VIP itself.
	if want := encapsulated(ex, in, vip, real); !bytes.Equal(out, want) {
		t.Errorf("VIP packet:\n got %x\nwant %x", out, want)
	}

	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"to the router", packet{client, ex.addr("router:eth0"), tcp, 40612, 50007}.bytes(ex)},
		{"ARP", append(append(ex.mac("katran:eth0"), ex.mac("router:eth0")...), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)},
		{"truncated", in[:20]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, out := ex.run(t, tc.in)
			if ret != xdpPass || !bytes.Equal(out, tc.in) {
				t.Errorf("verdict %d, changed=%v; want XDP_PASS, unchanged", ret, !bytes.Equal(out, tc.in))
			}
		})
	}
}

func TestExampleHash(t *testing.T) {
	ex := loadExample(t, "xdp-lb-hash")
	client := ex.addr("client:eth0")
	katran := ex.addr("katran:eth0")
	reals := map[netip.Addr]string{}
	for _, r := range []string{"real1", "real2", "real3"} {
		reals[ex.addr(r+":eth0")] = r
	}

	// sendAll sends one packet per source port and tallies the reals.
	sendAll := func(t *testing.T) map[string]uint64 {
		t.Helper()
		got := map[string]uint64{}
		for sport := uint16(40000); sport < 40060; sport++ {
			in := packet{client, vip, tcp, sport, 50007}.bytes(ex)
			ret, out := ex.run(t, in)
			if ret != xdpTX {
				t.Fatalf("port %d: verdict %d, want XDP_TX", sport, ret)
			}
			dst, _ := netip.AddrFromSlice(out[14+16 : 14+20])
			real, ok := reals[dst]
			if !ok {
				t.Fatalf("port %d: sent to %s, not a real", sport, dst)
			}
			// The outer source is katran's own address here.
			if want := encapsulated(ex, in, katran, dst); !bytes.Equal(out, want) {
				t.Fatalf("port %d:\n got %x\nwant %x", sport, out, want)
			}
			// A connection sticks to its real.
			if _, again := ex.run(t, in); !bytes.Equal(again, out) {
				t.Fatalf("port %d: a second packet of the flow went elsewhere", sport)
			}
			got[real] += 2
		}
		return got
	}

	tally := sendAll(t)
	if len(tally) != 3 {
		t.Fatalf("60 flows reached %v, want all three reals", tally)
	}
	maps, err := Maps(ex.loaded.Program, ex.obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Map{}
	for _, m := range maps {
		defer m.Close()
		byName[m.Name] = m
	}
	// real_stats counts per real index; the index of a real is its key in reals.
	index := map[string]string{}
	for _, e := range mustDump(t, byName["reals"]) {
		addr, _ := netip.AddrFromSlice(e.Value.Raw)
		index[e.Key.String()] = reals[addr]
	}
	for _, e := range mustDump(t, byName["real_stats"]) {
		real := index[e.Key.String()]
		want := fmt.Sprintf("{packets: %d, bytes: %d}", tally[real], tally[real]*(20+20+6))
		if real == "" {
			want = "{packets: 0, bytes: 0}"
		}
		if e.Value.String() != want {
			t.Errorf("real_stats[%s] (%s) sums to %s, want %s", e.Key, real, e.Value, want)
		}
	}

	for _, tc := range []struct {
		name string
		p    packet
	}{
		{"other port", packet{client, vip, tcp, 40000, 80}},
		{"other protocol", packet{client, vip, udp, 40000, 50007}},
		{"other address", packet{client, katran, tcp, 40000, 50007}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.p.bytes(ex)
			if ret, out := ex.run(t, in); ret != xdpPass || !bytes.Equal(out, in) {
				t.Errorf("verdict %d, want XDP_PASS with the packet unchanged", ret)
			}
		})
	}

	// `dsrlab map katran reals set` and `... config set` move the traffic.
	t.Run("map set moves traffic", func(t *testing.T) {
		if err := byName["reals"].Set("0", "{addr: real3:eth0}", ex.resolve); err != nil {
			t.Fatal(err)
		}
		cfg := mustDump(t, byName["config"])[0].Value.String()
		t.Logf("config: %s", cfg)
		one := strings.Replace(cfg, "real_count: 3", "real_count: 1", 1)
		if one == cfg {
			t.Fatalf("config %s has no real_count: 3", cfg)
		}
		if err := byName["config"].Set("0", one, ex.resolve); err != nil {
			t.Fatal(err)
		}
		if got := sendAll(t); len(got) != 1 || got["real3"] == 0 {
			t.Errorf("after set: flows reached %v, want only real3", got)
		}
	})

	t.Run("no reals", func(t *testing.T) {
		cfg := mustDump(t, byName["config"])[0].Value.String()
		none := strings.Replace(cfg, "real_count: 1", "real_count: 0", 1)
		if err := byName["config"].Set("0", none, nil); err != nil {
			t.Fatal(err)
		}
		if ret, _ := ex.run(t, packet{client, vip, tcp, 40000, 50007}.bytes(ex)); ret != xdpDrop {
			t.Errorf("verdict %d, want XDP_DROP", ret)
		}
	})
}
