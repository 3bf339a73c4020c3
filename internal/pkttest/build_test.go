package pkttest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// fakeLab resolves two interfaces, as a lab would.
func fakeLab(ref string, size int) ([]byte, error) {
	known := map[string]map[int]string{
		"client:eth0": {4: "10.111.220.11", 16: "fd00::11", 6: "02:00:00:00:00:11"},
		"router:eth0": {4: "10.111.221.12", 6: "02:00:00:00:00:12"},
	}
	v, ok := known[ref][size]
	if !ok {
		return nil, fmt.Errorf("%q names no node:interface of lab test", ref)
	}
	if size == 6 {
		b, _ := hex.DecodeString(strings.ReplaceAll(v, ":", ""))
		return b, nil
	}
	return netip.MustParseAddr(v).AsSlice(), nil
}

// buildPacket parses a one-case file around a packet and returns its bytes.
func buildPacket(t *testing.T, packet string) []byte {
	t.Helper()
	s, err := Parse([]byte("cases:\n  - name: x\n    expect: {verdict: XDP_PASS}\n    packet: "+packet+"\n"), "t.yaml", fakeLab, Target{})
	if err != nil {
		t.Fatalf("%s: %v", packet, err)
	}
	return s.Cases[0].Steps[0].Packet
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// internetSum is RFC 1071 written out byte by byte, apart from the
// builder's: a header with a correct checksum sums to 0xffff.
func internetSum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var sum uint32
	for i := 0; i < len(all); i += 2 {
		sum += uint32(all[i])<<8 | uint32(all[i+1])
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// TestBuildAgainstHandWrittenBytes checks each layer against bytes
// written from the RFCs, checksum fields included as the test worked them
// out (they are also verified with an independent sum, or x/net's ICMP).
func TestBuildAgainstHandWrittenBytes(t *testing.T) {
	for _, tc := range []struct {
		name, packet, want string
	}{
		{"eth and raw payload", `{eth: {dst: ff:ff:ff:ff:ff:ff, src: client:eth0, type: arp}, payload: {hex: "0001 0800"}}`,
			"ffffffffffff 020000000011 0806 00010800"},
		{"IPv4 header of RFC 1071's usual example (Wikipedia's)", `{ip: {src: 192.168.0.1, dst: 192.168.0.199, proto: udp, ttl: 64, df: true, len: 115}}`,
			"4500 0073 0000 4000 4011 b861 c0a80001 c0a800c7"},
		{"checksum given is written as given", `{ip: {src: 192.168.0.1, dst: 192.168.0.199, proto: 17, df: true, len: 115, checksum: 0x1234}}`,
			"4500 0073 0000 4000 4011 1234 c0a80001 c0a800c7"},
		{"IPv4 options pad to 4 bytes; ihl follows", `{ip: {src: 10.0.0.1, dst: 10.0.0.2, proto: 59, options: "0101 01"}}`,
			"4600 0018 0000 0000 403b .... 0a000001 0a000002 01010100"},
		{"vlan tags, outer first", `{eth: {dst: router:eth0, src: client:eth0}, vlan: [{id: 100, type: qinq}, {id: 7, pcp: 5}], ip: {src: 10.0.0.1, dst: 10.0.0.2}}`,
			"020000000012 020000000011 8100 0064 88a8 a007 0800 4500 0014 0000 0000 403b .... 0a000001 0a000002"},
		{"TCP SYN with payload", `{ip: {src: client:eth0, dst: 192.168.10.1}, tcp: {sport: 40000, dport: 50007, flags: S, seq: 1}, payload: hi}`,
			"4500 002a 0000 0000 4006 .... 0a6fdc0b c0a80a01 9c40 c357 00000001 00000000 5002 ffff .... 0000 6869"},
		{"TCP flags in tcpdump's letters", `{ip: {src: 10.0.0.1, dst: 10.0.0.2}, tcp: {flags: "S.", win: 1, off: 6, options: "02040400"}}`,
			"4500 002c 0000 0000 4006 .... 0a000001 0a000002 0000 0000 00000000 00000000 6012 0001 .... 0000 02040400"},
		{"UDP", `{ip: {src: 10.0.0.1, dst: 10.0.0.2}, udp: {sport: 53, dport: 5353}, payload: {size: 3}}`,
			"4500 001f 0000 0000 4011 .... 0a000001 0a000002 0035 14e9 000b .... 000000"},
		{"IPIP: inner addresses untouched, outer protocol 4", `{ip: {src: 10.111.221.11, dst: 10.111.222.11}, inner: {ip: {src: client:eth0, dst: 192.168.10.1}, udp: {sport: 1, dport: 2}}}`,
			"4500 0030 0000 0000 4004 .... 0a6fdd0b 0a6fde0b 4500 001c 0000 0000 4011 .... 0a6fdc0b c0a80a01 0001 0002 0008 ...."},
		{"IPv6 with hop-by-hop, routing, destination and fragment headers", `{ipv6: {src: "fd00::1", dst: "fd00::2", tos: 0x12, flow: 0x12345}, ext: [hop, {routing: {type: 4, left: 1, data: "0000 0000"}}, {dest: {data: "0102"}}, {frag: {offset: 1, more: true, id: 7}}], payload: {hex: ab}}`,
			"6121 2345 0021 0040 fd00000000000000 0000000000000001 fd00000000000000 0000000000000002" +
				"2b00 0104 0000 0000" + // hop: next routing, PadN of 4 bytes of zeros
				"3c00 0401 0000 0000" + // routing: next dest, type 4, 1 left
				"2c00 0102 0102 0000" + // dest: next frag, 01 02, PadN of 2 bytes of zeros
				"3b00 0009 00000007" + // frag: next none, offset 1, more
				"ab"},
		{"ip6ip6", `{ip: {src: "fd00::1", dst: "fd00::2"}, inner: {ipv6: {src: client:eth0, dst: "fd00::9"}}}`,
			"6000 0000 0028 2940 fd000000000000000000000000000001 fd000000000000000000000000000002" +
				"6000 0000 0000 3b40 fd000000000000000000000000000011 fd000000000000000000000000000009"},
		{"4in6", `{ipv6: {src: "fd00::1", dst: "fd00::2", ttl: 1}, inner: {ip: {src: 10.0.0.1, dst: 10.0.0.2}}}`,
			"6000 0000 0014 0401 fd000000000000000000000000000001 fd000000000000000000000000000002" +
				"4500 0014 0000 0000 403b .... 0a000001 0a000002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := buildPacket(t, tc.packet)
			want, mask := unhexMasked(t, tc.want)
			if len(got) != len(want) {
				t.Fatalf("built %d bytes\n %x\nwant %d", len(got), got, len(want))
			}
			for i := range got {
				if got[i]&mask[i] != want[i] {
					t.Fatalf("byte %d differs: built\n %x\nwant\n %s", i, got, strings.Join(strings.Fields(tc.want), ""))
				}
			}
			// The checksums left out above are checked by the
			// dissector here, and apart from it in TestChecksumsVerify.
			frame := got
			if !strings.Contains(tc.packet, "eth:") {
				frame = append(unhex(t, "000000000000 000000000000 0800"), got...)
			}
			for _, l := range Dissect(frame) {
				if f, ok := l.Get("checksum"); ok && f.Value.Check != checkOK && !strings.Contains(tc.name, "given") {
					t.Errorf("%s checksum %#x does not verify", l.Kind, f.Value.Num)
				}
			}
		})
	}
}

// unhexMasked reads hex in which "." stands for a digit not checked (a
// checksum).
func unhexMasked(t *testing.T, s string) (value, mask []byte) {
	t.Helper()
	s = strings.Join(strings.Fields(s), "")
	return unhex(t, strings.ReplaceAll(s, ".", "0")), unhex(t, strings.Map(func(r rune) rune {
		if r == '.' {
			return '0'
		}
		return 'f'
	}, s))
}

// TestChecksumsVerify checks the builder's checksums with sums written
// apart from it, and x/net's ICMP marshalling.
func TestChecksumsVerify(t *testing.T) {
	tcp := buildPacket(t, `{ip: {src: 10.0.0.1, dst: 10.0.0.2}, tcp: {sport: 1, dport: 2, flags: PA}, payload: "odd"}`)
	pseudo := append(append([]byte{}, tcp[12:20]...), 0, 6, 0, byte(len(tcp)-20))
	if s := internetSum(tcp[:20]); s != 0xffff {
		t.Errorf("IPv4 header sums to %#x", s)
	}
	if s := internetSum(pseudo, tcp[20:]); s != 0xffff {
		t.Errorf("TCP segment sums to %#x", s)
	}
	udp6 := buildPacket(t, `{ipv6: {src: client:eth0, dst: "fd00::2"}, udp: {sport: 1, dport: 2}, payload: "x"}`)
	pseudo6 := append(append([]byte{}, udp6[8:40]...), 0, 0, 0, byte(len(udp6)-40), 0, 0, 0, 17)
	if s := internetSum(pseudo6, udp6[40:]); s != 0xffff {
		t.Errorf("UDP over IPv6 sums to %#x", s)
	}

	echo := buildPacket(t, `{ip: {src: 10.0.0.1, dst: 10.0.0.2}, icmp: {type: echo-request, id: 7, seq: 9}, payload: ping}`)
	want, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 7, Seq: 9, Data: []byte("ping")}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(echo[20:], want) {
		t.Errorf("ICMP echo\n %x\nx/net says\n %x", echo[20:], want)
	}
	echo6 := buildPacket(t, `{ipv6: {src: "fd00::1", dst: "fd00::2"}, icmpv6: {type: echo-request, id: 7, seq: 9}, payload: ping}`)
	psh := icmp.IPv6PseudoHeader(netip.MustParseAddr("fd00::1").AsSlice(), netip.MustParseAddr("fd00::2").AsSlice())
	want6, err := (&icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: 7, Seq: 9, Data: []byte("ping")}}).Marshal(psh)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(echo6[40:], want6) {
		t.Errorf("ICMPv6 echo\n %x\nx/net says\n %x", echo6[40:], want6)
	}
	tooBig := buildPacket(t, `{ip: {src: 10.0.0.1, dst: 10.0.0.2}, icmp: {type: unreachable, code: 4, mtu: 1480}, inner: {ip: {src: 10.0.0.2, dst: 10.0.0.3}, udp: {}}}`)
	if got := tooBig[20:28]; !bytes.Equal(got[4:], []byte{0, 0, 0x05, 0xc8}) || internetSum(tooBig[20:]) != 0xffff {
		t.Errorf("fragmentation needed: %x", got)
	}
}

// TestDissectRoundTrip dissects built packets back into the fields given.
func TestDissectRoundTrip(t *testing.T) {
	for _, packet := range []string{
		`{eth: {dst: router:eth0, src: client:eth0}, vlan: {id: 42}, ip: {src: client:eth0, dst: 192.168.10.1, ttl: 7, df: true, id: 99}, tcp: {sport: 1, dport: 2, flags: FPU, seq: 3, ack: 4, urg: 5}, payload: abc}`,
		`{eth: {}, ipv6: {src: "fd00::1", dst: "fd00::2"}, ext: [hop, {frag: {id: 1}}], udp: {sport: 1, dport: 2}}`,
		`{eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2}, inner: {ipv6: {src: "fd00::1", dst: "fd00::2"}, icmpv6: {type: too-big, mtu: 1280}, inner: {ipv6: {src: "fd00::2", dst: "fd00::3"}, tcp: {sport: 80, dport: 81}}}}`,
	} {
		built := buildPacket(t, packet)
		s, err := Parse([]byte("cases:\n  - name: x\n    packet: {hex: ab}\n    expect: {packet: "+packet+"}\n"), "t.yaml", fakeLab, Target{})
		if err != nil {
			t.Fatal(err)
		}
		if ms := s.Cases[0].Steps[0].Expect.Packet.Compare(nil, built); len(ms) > 0 {
			t.Errorf("%s: dissected differently: %+v\n%s", packet, ms, strings.Join(LayerLines(Dissect(built)), "\n"))
		}
		for _, l := range Dissect(built) {
			if f, ok := l.Get("checksum"); ok && f.Value.Check != checkOK {
				t.Errorf("%s: %s checksum does not verify", packet, l.Kind)
			}
		}
	}
}

// TestDissectTruncatedQuote reads the 8 bytes of TCP an ICMP error
// quotes: ports and sequence number, marked truncated.
func TestDissectTruncatedQuote(t *testing.T) {
	full := buildPacket(t, `{eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2}, icmp: {type: unreachable, code: 4, mtu: 1000}, inner: {ip: {src: 10.0.0.2, dst: 10.0.0.3}, tcp: {sport: 80, dport: 81, seq: 5}}}`)
	cut := full[:14+20+8+20+8]
	layers := Dissect(cut)
	last := layers[len(layers)-1]
	if last.Kind != "tcp" || !last.Truncated || last.num("dport", 0) != 81 || last.num("seq", 0) != 5 || last.has("flags") {
		t.Errorf("quoted TCP: %+v", last)
	}
}
