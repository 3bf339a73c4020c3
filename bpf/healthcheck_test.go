//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
)

// The TC verdicts (include/uapi/linux/pkt_cls.h).
const (
	tcActOK   = 0
	tcActShot = 2
)

// skbContext is the leading part of struct __sk_buff, the part a test run
// may set: everything before mark must be zero, and mark is what
// tc_healthcheck reads.
type skbContext struct {
	Len, PktType, Mark uint32
}

func newHealthCheck(tb testing.TB, tunnels map[uint32]Tunnel) *HealthCheck {
	tb.Helper()
	requireBPF(tb)
	h, err := LoadHealthCheck()
	if err != nil {
		skipIfUnsupported(tb, err)
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	if _, err := h.SetTunnels(tunnels); err != nil {
		tb.Fatal(err)
	}
	return h
}

// runTC runs prog once on the frame in, as sent by a socket with mark.
func runTC(tb testing.TB, prog *ebpf.Program, mark uint32, in []byte) (uint32, []byte) {
	tb.Helper()
	opts := ebpf.RunOptions{
		Data:    in,
		DataOut: make([]byte, len(in)+ipv6HeaderLen),
		Context: skbContext{Mark: mark},
		Repeat:  1,
	}
	ret, err := prog.Run(&opts)
	if err != nil {
		skipIfUnsupported(tb, err)
		tb.Fatalf("run %s: %v", prog, err)
	}
	return ret, opts.DataOut
}

// A katran's check of real: from its uplink address to the VIP, as the
// kernel hands it to TC egress (towards the router).
var (
	checkFlow  = flow{src: katranAddr, dst: vipAddr, sport: 41000, dport: vipPort, proto: uint8(ProtoTCP)}
	checkFlow6 = flow{src: katran6, dst: vip6, sport: 41000, dport: vipPort, proto: uint8(ProtoTCP)}
	checkFlow4 = flow{src: katranAddr, dst: vip4Over6, sport: 41000, dport: vipPort, proto: uint8(ProtoTCP)}
)

// syn makes a frame's TCP segment a SYN, as a tcp check's first packet.
func syn(frame []byte, l3Len int) []byte {
	out := bytes.Clone(frame)
	out[ethHeaderLen+l3Len+tcpFlagsOffset] = tcpFlagSYN
	return out
}

// sameMACs is the frame want with in's Ethernet addresses: TC egress
// leaves them as the kernel's neighbour table set them.
func sameMACs(want, in []byte) []byte {
	copy(want[:2*6], in[:2*6])
	return want
}

func TestHealthCheckFixtures(t *testing.T) {
	const realMark, real6Mark, real4in6Mark, unknownMark = 0x6473_0001, 0x6473_0002, 0x6473_0003, 0x6473_0009
	h := newHealthCheck(t, map[uint32]Tunnel{
		realMark:     {Src: katranAddr, Dst: realAddr},
		real6Mark:    {Src: katran6, Dst: real6},
		real4in6Mark: {Src: katran6, Dst: real6},
	})
	v4 := syn(checkFlow.frame(func(p *ipv4Packet) { p.tos = 0x10 }), ipv4HeaderLen)
	v6 := syn(checkFlow6.frame6(func(p *ipv6Packet) { p.tclass = 0x28 }), ipv6HeaderLen)
	v4in6 := syn(checkFlow4.frame(), ipv4HeaderLen)
	udp := udpFlow.frame()

	for _, tc := range []struct {
		name string
		mark uint32
		in   []byte
		want uint32
		out  []byte // nil: unchanged
	}{
		{name: "marked ipv4 syn", mark: realMark, in: v4, want: tcActOK, out: sameMACs(ipipEncap(v4, katranAddr, realAddr, routerMAC), v4)},
		{name: "marked ipv4 udp", mark: realMark, in: udp, want: tcActOK, out: sameMACs(ipipEncap(udp, katranAddr, realAddr, routerMAC), udp)},
		{name: "marked ipv6 syn", mark: real6Mark, in: v6, want: tcActOK, out: sameMACs(ip6Encap(v6, katran6, real6, routerMAC), v6)},
		{name: "marked ipv4 to ipv6 real", mark: real4in6Mark, in: v4in6, want: tcActOK, out: sameMACs(ip6Encap(v4in6, katran6, real6, routerMAC), v4in6)},
		{name: "unmarked", mark: 0, in: v4, want: tcActOK},
		{name: "unknown mark", mark: unknownMark, in: v4, want: tcActOK},
		{name: "marked arp", mark: realMark, in: arpRequest(), want: tcActOK},
		// IPv6 inside IPv4 is never configured: the check is dropped,
		// not sent plain to the VIP's balancers.
		{name: "marked ipv6 to ipv4 real", mark: realMark, in: v6, want: tcActShot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, out := runTC(t, h.Program(), tc.mark, tc.in)
			if ret != tc.want {
				t.Fatalf("verdict %d, want %d", ret, tc.want)
			}
			if tc.want == tcActShot {
				return
			}
			want := tc.out
			if want == nil {
				want = tc.in
			}
			if !bytes.Equal(out, want) {
				t.Errorf("frame\n got % x\nwant % x", out, want)
			}
		})
	}
}

// The outer header of an encapsulated check carries a correct checksum
// and DF, whatever the fixtures' builder computes.
func TestHealthCheckOuterHeader(t *testing.T) {
	h := newHealthCheck(t, map[uint32]Tunnel{1: {Src: katranAddr, Dst: realAddr}})
	_, out := runTC(t, h.Program(), 1, checkFlow.frame())
	outer := out[ethHeaderLen : ethHeaderLen+ipv4HeaderLen]
	if ipChecksum(outer) != 0 {
		t.Errorf("outer checksum does not verify: % x", outer)
	}
	if binary.BigEndian.Uint16(outer[6:]) != ipFlagDF || outer[9] != protoIPIP {
		t.Errorf("outer header % x: want DF and protocol IPIP", outer)
	}
}

func TestHealthCheckSetTunnels(t *testing.T) {
	a := Tunnel{Src: katranAddr, Dst: realAddr}
	b := Tunnel{Src: katranAddr, Dst: otherReal}
	h := newHealthCheck(t, map[uint32]Tunnel{1: a, 2: b})
	for _, step := range []struct {
		set     map[uint32]Tunnel
		changed int
	}{
		{map[uint32]Tunnel{1: a, 2: b}, 0},
		{map[uint32]Tunnel{1: b, 3: a}, 3}, // 1 changed, 2 removed, 3 added
		{map[uint32]Tunnel{}, 2},
	} {
		changed, err := h.SetTunnels(step.set)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.Tunnels()
		if err != nil {
			t.Fatal(err)
		}
		if changed != step.changed || len(got) != len(step.set) {
			t.Errorf("SetTunnels(%v): changed %d, map %v; want %d changed", step.set, changed, got, step.changed)
		}
		for mark, want := range step.set {
			if got[mark] != want {
				t.Errorf("mark %d: %v, want %v", mark, got[mark], want)
			}
		}
	}
	for name, bad := range map[string]map[uint32]Tunnel{
		"mark 0":       {0: a},
		"mixed family": {1: {Src: katran6, Dst: realAddr}},
		"no source":    {1: {Dst: realAddr}},
	} {
		if _, err := h.SetTunnels(bad); err == nil {
			t.Errorf("SetTunnels(%s): no error", name)
		}
	}
}

// OpenHealthCheck finds the map of a program another handle loaded.
func TestOpenHealthCheck(t *testing.T) {
	a := Tunnel{Src: katranAddr, Dst: realAddr}
	h := newHealthCheck(t, map[uint32]Tunnel{7: a})
	opened, err := OpenHealthCheck(h.Program())
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	got, err := opened.Tunnels()
	if err != nil || len(got) != 1 || got[7] != a {
		t.Errorf("Tunnels of the opened program = %v, %v; want {7: %v}", got, err, a)
	}
}
