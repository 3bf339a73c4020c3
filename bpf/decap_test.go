//go:build linux

package bpf

import (
	"bytes"
	"net/netip"
	"testing"
)

func newDecap(tb testing.TB, dsts ...netip.Addr) *Decap {
	tb.Helper()
	requireBPF(tb)
	d, err := LoadDecap(dsts)
	if err != nil {
		skipIfUnsupported(tb, err)
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// decapsulated is what the real's kernel must see for an IPIP frame: the
// inner packet behind the frame's own Ethernet header.
func decapsulated(ipip []byte) []byte {
	return append(bytes.Clone(ipip[:ethHeaderLen]), ipip[ethHeaderLen+ipv4HeaderLen:]...)
}

func TestDecapFixtures(t *testing.T) {
	d := newDecap(t, realAddr)

	toReal := ipipEncap(tcpFlow.frame(), katranAddr, realAddr, realSideMAC)
	toOther := ipipEncap(tcpFlow.frame(), katranAddr, otherReal, realSideMAC)
	plainToReal := flow{src: clientAddr, dst: realAddr, sport: 40000, dport: vipPort, proto: uint8(ProtoTCP)}.frame()

	// An outer header followed by less than a full inner IPv4 header, with
	// a tot_len that agrees, so only the inner check can reject it.
	shortInner := ipv4Packet{src: katranAddr, dst: realAddr, proto: protoIPIP,
		payload: tcpFlow.frame()[ethHeaderLen : ethHeaderLen+ipv4HeaderLen-1]}
	truncatedInner := ethFrame(realSideMAC, routerMAC, etherTypeIPv4, shortInner.marshal())

	outerFragment := bytes.Clone(toReal)
	outerFragment[ethHeaderLen+6] |= ipFlagMF >> 8

	// The decapsulator always passes: what differs is whether the outer
	// header is gone.
	runFixtures(t, d.Program(), []fixture{
		{name: "ipip to listed dst", in: toReal, want: xdpPass, out: decapsulated(toReal)},
		{name: "ipip to unlisted dst", in: toOther, want: xdpPass},
		{name: "plain tcp to listed dst", in: plainToReal, want: xdpPass},
		{name: "truncated inner header", in: truncatedInner, want: xdpPass},
		{name: "outer fragment", in: outerFragment, want: xdpPass},
		{name: "arp", in: arpRequest(), want: xdpPass},
	}, nil)

	s, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Decapsulated != 1 {
		t.Errorf("decapsulated %d, want 1", s.Decapsulated)
	}
}

func TestLoadDecapRejects(t *testing.T) {
	requireBPF(t)
	for name, dsts := range map[string][]netip.Addr{
		"none":             nil,
		"ipv4-mapped":      {netip.AddrFrom16(realAddr.As16())},
		"unspecified":      {netip.IPv4Unspecified()},
		"unspecified ipv6": {netip.IPv6Unspecified()},
	} {
		if d, err := LoadDecap(dsts); err == nil {
			d.Close()
			t.Errorf("LoadDecap(%s): no error", name)
		}
	}
}

// The balancer's output, decapsulated on the real, is the client's packet
// again; only the Ethernet addresses differ.
func TestEncapDecapRoundTrip(t *testing.T) {
	b := newLabBalancer(t)
	d := newDecap(t, realAddr)

	for _, in := range [][]byte{tcpFlow.frame(), udpFlow.frame()} {
		roundTrip(t, b, d, in)
	}
}

// roundTrip sends a packet through the balancer and the decapsulator: what
// the real's kernel gets must be what the client sent, but for the MACs.
func roundTrip(t *testing.T, b *Balancer, d *Decap, in []byte) {
	t.Helper()
	verdict, encapsulated := runXDP(t, b.Program(), in)
	if verdict != xdpTX {
		t.Fatalf("balancer verdict %s, want XDP_TX", verdict)
	}
	verdict, out := runXDP(t, d.Program(), encapsulated)
	if verdict != xdpPass {
		t.Fatalf("decap verdict %s, want XDP_PASS", verdict)
	}
	if !bytes.Equal(out[2*len(routerMAC):], in[2*len(routerMAC):]) {
		t.Errorf("round trip changed the packet\n got %x\nwant %x", out, in)
	}
}
