//go:build linux

package bpf

import (
	"net/netip"
	"testing"
)

// An any-port VIP serves every port of its address and protocol that no
// VIP names exactly; the exact VIP wins.
func TestBalancerAnyPort(t *testing.T) {
	b := newConfigured(t)
	anyTCP := VIP{Addr: vipAddr, Port: AnyPort, Proto: ProtoTCP}
	setVIP(t, b, anyTCP, equal(otherReal))
	setVIP(t, b, tcpVIP, equal(realAddr))

	http, udp := tcpFlow, udpFlow
	http.dport = 80
	encap := func(in []byte, real netip.Addr) []byte { return ipipEncap(in, katranAddr, real, routerMAC) }
	runFixtures(t, b.Program(), []fixture{
		{name: "exact port", in: tcpFlow.frame(), want: xdpTX, out: encap(tcpFlow.frame(), realAddr)},
		{name: "any other port", in: http.frame(), want: xdpTX, out: encap(http.frame(), otherReal)},
		{name: "other protocol", in: udp.frame(), want: xdpPass},
	}, nil)

	if err := b.DeleteVIP(tcpVIP); err != nil {
		t.Fatal(err)
	}
	if got := encapsulatedTo(t, b, tcpFlow); got != otherReal {
		t.Errorf("exact vip deleted: sent to %s, want the any-port vip's %s", got, otherReal)
	}
}

// Hash modes decide the real of new flows: the ring owner of the flow
// with the ignored fields zeroed.
func TestBalancerHashModes(t *testing.T) {
	reals := equal(realAt(0), realAt(1), realAt(2), realAt(3))
	r := newRing(t, reals)
	clientAt := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 111, 220, byte(100 + i)}) }
	tests := []struct {
		hash HashMode
		// hashed is the flow the ring is read for.
		hashed func(flow) flow
		// vary makes the i-th flow of a spread.
		vary func(f flow, i int) flow
		// same: every flow of the spread must reach one real.
		same bool
	}{
		{HashFiveTuple, func(f flow) flow { return f }, func(f flow, i int) flow { f.sport += uint16(i); return f }, false},
		{HashNoSrcPort, func(f flow) flow { f.sport = 0; return f }, func(f flow, i int) flow { f.sport += uint16(i); return f }, true},
		{HashDstPortOnly, func(f flow) flow { f.sport = 0; f.src = netip.IPv4Unspecified(); return f },
			func(f flow, i int) flow { f.src, f.sport = clientAt(i), f.sport+uint16(i); return f }, true},
	}
	for _, tt := range tests {
		t.Run(tt.hash.String(), func(t *testing.T) {
			b := newConfigured(t)
			v := tcpVIP
			v.Hash = tt.hash
			setVIP(t, b, v, reals)
			got := map[netip.Addr]bool{}
			for i := range 64 {
				f := tt.vary(tcpFlow, i)
				real := encapsulatedTo(t, b, f)
				if want := r.owner(tt.hashed(f)); real != want {
					t.Fatalf("flow %v: sent to %s, want %s", f, real, want)
				}
				got[real] = true
			}
			if tt.same != (len(got) == 1) {
				t.Errorf("64 flows reached %d reals", len(got))
			}
			vips, err := b.VIPs()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := vips[v]; !ok {
				t.Errorf("VIPs() = %v, want %s", vips, v)
			}
		})
	}
}

// A VIP's hash mode is a setting: SetVIP changes it in place, DeleteVIP
// finds the VIP whatever mode it is given.
func TestBalancerHashModeInPlace(t *testing.T) {
	b := newLabBalancer(t)
	v := tcpVIP
	v.Hash = HashNoSrcPort
	setVIP(t, b, v, equal(realAddr))
	vips, err := b.VIPs()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := vips[v]; !ok || len(vips) != 2 {
		t.Fatalf("VIPs() = %v, want %s and %s", vips, v, udpVIP)
	}
	if err := b.DeleteVIP(tcpVIP); err != nil {
		t.Fatal(err)
	}
	if got, _ := runXDP(t, b.Program(), tcpFlow.frame()); got != xdpPass {
		t.Errorf("deleted vip: %s, want XDP_PASS", got)
	}
}

func TestHashModeNames(t *testing.T) {
	for _, h := range []HashMode{HashFiveTuple, HashNoSrcPort, HashDstPortOnly} {
		got, err := ParseHashMode(h.String())
		if err != nil || got != h {
			t.Errorf("ParseHashMode(%q) = %v, %v", h.String(), got, err)
		}
	}
	if h, err := ParseHashMode(""); err != nil || h != HashFiveTuple {
		t.Errorf(`ParseHashMode("") = %v, %v; want the default`, h, err)
	}
	if _, err := ParseHashMode("src-port-only"); err == nil {
		t.Error("unknown mode parsed")
	}
	// The Go modes are the C enum's values.
	c := map[HashMode]balancerVipHash{
		HashFiveTuple:   balancerVipHashVIP_HASH_FIVE_TUPLE,
		HashNoSrcPort:   balancerVipHashVIP_HASH_NO_SRC_PORT,
		HashDstPortOnly: balancerVipHashVIP_HASH_DST_PORT_ONLY,
	}
	for h, want := range c {
		if balancerVipHash(h) != want {
			t.Errorf("%s is %d in Go, %d in C", h, h, want)
		}
	}
}

// Each real's own path MTU decides what is too big for it; 0 is the
// uplink's.
func TestBalancerPerRealMTU(t *testing.T) {
	b := newConfigured(t)
	const small, tiny = 1400, 300
	smallVIP, tinyVIP := tcpVIP, udpVIP
	setVIP(t, b, smallVIP, []Real{{Addr: realAddr, Weight: 1, MTU: small}})
	setVIP(t, b, tinyVIP, []Real{{Addr: otherReal, Weight: 1, MTU: tiny}})
	uplinkVIP := VIP{Addr: netip.MustParseAddr("192.168.10.2"), Port: vipPort, Proto: ProtoTCP}
	setVIP(t, b, uplinkVIP, equal(realAt(0)))
	toUplink := tcpFlow
	toUplink.dst = uplinkVIP.Addr

	tooBigSmall := tcpFlow.frame(withDF, sized(small-ipv4HeaderLen+1))
	// Shorter than the 548 bytes RFC 1812 asks to quote: the least.
	tooBigTiny := udpFlow.frame(withDF, sized(tiny))
	fitsUplink := toUplink.frame(withDF, sized(small))
	runFixtures(t, b.Program(), []fixture{
		{name: "over the real's mtu", in: tooBigSmall, want: xdpTX, out: icmpTooBig(tooBigSmall, small)},
		{name: "at the real's mtu", in: tcpFlow.frame(withDF, sized(small-ipv4HeaderLen)), want: xdpTX,
			out: ipipEncap(tcpFlow.frame(withDF, sized(small-ipv4HeaderLen)), katranAddr, realAddr, routerMAC)},
		{name: "short quote", in: tooBigTiny, want: xdpTX, out: icmpTooBig(tooBigTiny, tiny)},
		{name: "mtu 0 is the uplink's", in: fitsUplink, want: xdpTX, out: ipipEncap(fitsUplink, katranAddr, realAt(0), routerMAC)},
	}, func(t *testing.T, tt fixture, out []byte) {
		if out[ethHeaderLen+9] == protoICMP {
			checkICMPChecksums(t, out)
		}
	})

	vips, err := b.VIPs()
	if err != nil {
		t.Fatal(err)
	}
	if got := vips[smallVIP]; len(got) != 1 || got[0].MTU != small {
		t.Errorf("VIPs()[%s] = %v, want the real with mtu %d", smallVIP, got, small)
	}
	for _, mtu := range []int{MinPathMTU - 1, MaxPathMTU + 1} {
		if err := b.SetVIP(smallVIP, []Real{{Addr: realAddr, Weight: 1, MTU: mtu}}); err == nil {
			t.Errorf("real mtu %d: no error", mtu)
		}
	}
}
