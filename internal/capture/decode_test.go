package capture

import (
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture/filter"
	pt "github.com/dsrlab/dsrlab/internal/capture/packettest"
)

var (
	synToVIP = pt.IPv4Header{Src: pt.Addr("10.111.220.11"), Dst: pt.Addr("192.168.10.1"), Proto: pt.TCP}.
			Marshal(pt.TCPHeader{SrcPort: 40612, DstPort: 50007, Flags: pt.SYN}.Marshal(nil))
	encapsulated = pt.IPv4Header{Src: pt.Addr("10.111.221.11"), Dst: pt.Addr("10.111.222.11"), Proto: pt.IPIP}.Marshal(synToVIP)
)

func TestDecodeAndFormat(t *testing.T) {
	arp := make([]byte, 28)
	copy(arp, []byte{0, 1, 8, 0, 6, 4, 0, 1})
	copy(arp[8:], pt.MACA)
	copy(arp[14:], []byte{10, 0, 0, 1})
	copy(arp[24:], []byte{10, 0, 0, 2})
	for _, c := range []struct {
		name    string
		frame   []byte
		link    filter.LinkType
		verbose bool
		want    string
	}{
		{"ipip shows both headers", pt.Ethernet(encapsulated), filter.Ethernet, false,
			"10.111.221.11 > 10.111.222.11 IPIP [10.111.220.11.40612 > 192.168.10.1.50007 TCP S]"},
		{"raw ip link", encapsulated, filter.RawIP, true,
			"10.111.221.11 > 10.111.222.11 IPIP [10.111.220.11.40612 > 192.168.10.1.50007 TCP S]"},
		{"verbose adds MACs", pt.Ethernet(synToVIP), filter.Ethernet, true,
			"02:00:00:00:00:0a > 02:00:00:00:00:0b, 10.111.220.11.40612 > 192.168.10.1.50007 TCP S"},
		{"tcp flags and payload", pt.Ethernet(pt.IPv4Header{Src: pt.Addr("192.168.10.1"), Dst: pt.Addr("10.111.220.11"), Proto: pt.TCP}.
			Marshal(pt.TCPHeader{SrcPort: 50007, DstPort: 40612, Flags: pt.PSH | pt.ACK}.Marshal([]byte("hello\n")))), filter.Ethernet, false,
			"192.168.10.1.50007 > 10.111.220.11.40612 TCP P. len 6"},
		{"syn-ack", pt.Ethernet(pt.IPv4Header{Src: pt.Addr("10.0.0.2"), Dst: pt.Addr("10.0.0.1"), Proto: pt.TCP}.
			Marshal(pt.TCPHeader{SrcPort: 80, DstPort: 1000, Flags: pt.SYN | pt.ACK}.Marshal(nil))), filter.Ethernet, false,
			"10.0.0.2.80 > 10.0.0.1.1000 TCP S."},
		{"udp over ipv6", pt.Ethernet(pt.IPv6Header{Src: pt.Addr("2001:db8::1"), Dst: pt.Addr("2001:db8::2"), Next: pt.UDP}.
			Marshal(pt.UDPHeader{SrcPort: 5353, DstPort: 53}.Marshal([]byte("abc")))), filter.Ethernet, false,
			"2001:db8::1.5353 > 2001:db8::2.53 UDP len 3"},
		{"ip6ip6", pt.Ethernet(pt.IPv6Header{Src: pt.Addr("fc00::1"), Dst: pt.Addr("fc00::2"), Next: pt.IPv6}.
			Marshal(pt.IPv6Header{Src: pt.Addr("2001:db8::1"), Dst: pt.Addr("2001:db8::2"), Next: pt.ICMPv6}.
				Marshal(pt.ICMPHeader{Type: 128, Rest: 7<<16 | 1}.Marshal(nil)))), filter.Ethernet, false,
			"fc00::1 > fc00::2 IP6IP6 [2001:db8::1 > 2001:db8::2 ICMP6 echo request id 7 seq 1]"},
		{"icmp echo", pt.Ethernet(pt.IPv4Header{Src: pt.Addr("10.0.0.1"), Dst: pt.Addr("10.0.0.2"), Proto: pt.ICMP}.
			Marshal(pt.ICMPHeader{Type: 8, Rest: 42<<16 | 3}.Marshal(nil))), filter.Ethernet, false,
			"10.0.0.1 > 10.0.0.2 ICMP echo request id 42 seq 3"},
		{"icmp too big", pt.Ethernet(pt.IPv4Header{Src: pt.Addr("192.168.10.1"), Dst: pt.Addr("10.0.0.1"), Proto: pt.ICMP}.
			Marshal(pt.ICMPHeader{Type: 3, Code: 4, Rest: 1480}.Marshal(nil))), filter.Ethernet, false,
			"192.168.10.1 > 10.0.0.1 ICMP unreachable, fragmentation needed, mtu 1480"},
		{"later fragment", pt.Ethernet(pt.IPv4Header{Src: pt.Addr("10.0.0.1"), Dst: pt.Addr("10.0.0.2"), Proto: pt.UDP, FragOffset: 185}.
			Marshal(make([]byte, 100))), filter.Ethernet, false,
			"10.0.0.1 > 10.0.0.2 UDP fragment"},
		{"arp", pt.Ethernet(arp, 0x0806), filter.Ethernet, false, "ARP who-has 10.0.0.2 tell 10.0.0.1"},
		{"other ethertype", pt.Ethernet(nil, 0x88cc), filter.Ethernet, false, "ethertype 0x88cc"},
		{"cut in the tcp header", pt.Ethernet(synToVIP[:30]), filter.Ethernet, false,
			"10.111.220.11 > 192.168.10.1 TCP [truncated]"},
		{"cut in the ethernet header", pt.Ethernet(nil)[:10], filter.Ethernet, false, "[truncated]"},
	} {
		if got := Decode(c.frame, c.link).String(c.verbose); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func TestFormatLine(t *testing.T) {
	frame := pt.Ethernet(encapsulated)
	p := Packet{Time: time.Date(2025, 1, 2, 15, 4, 5, 123456789, time.Local), Dir: In, Data: frame, Length: len(frame)}
	got := Format(p, Interface{Name: "real1:eth0", LinkType: filter.Ethernet}, false)
	want := "15:04:05.123456 real1:eth0 in  10.111.221.11 > 10.111.222.11 IPIP [10.111.220.11.40612 > 192.168.10.1.50007 TCP S], length 74"
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestTCPFlags(t *testing.T) {
	for flags, want := range map[uint8]string{
		pt.SYN: "S", pt.SYN | pt.ACK: "S.", pt.ACK: ".", pt.FIN | pt.ACK: "F.", pt.RST: "R", pt.PSH | pt.ACK: "P.", 0: "none",
	} {
		if got := TCPFlags(flags); got != want {
			t.Errorf("TCPFlags(%#x) = %q, want %q", flags, got, want)
		}
	}
}
